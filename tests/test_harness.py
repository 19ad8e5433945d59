"""The private servers the harness starts are real, reachable only by socket, and isolated."""

import pymysql


def test_mariadb_is_private_and_serving(mariadb, database):
    db = database.split("?")[0].rsplit("/", 1)[1]
    conn = pymysql.connect(unix_socket=mariadb.socket, user="root", database=db)
    with conn.cursor() as cur:
        cur.execute("SELECT @@datadir, @@skip_networking")
        datadir, skip_networking = cur.fetchone()
    conn.close()
    assert datadir.rstrip("/") == mariadb.datadir.rstrip("/")
    assert skip_networking == 1


def test_redis_is_private(redis_server):
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.connect(redis_server.socket)
    s.sendall(b"PING\r\n")
    assert s.recv(16) == b"+PONG\r\n"
    s.close()
