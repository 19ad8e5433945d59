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


def test_a_copied_schema_is_what_migrate_makes(mariadb, schema, database):
    """The ``app_server`` fixture copies ``schema`` instead of migrating: the copy has every
    table exactly as ``migrate`` creates it, and the same ``schema_migrations`` rows."""
    from shillings_app.migrations import migrate
    from tests.app.helpers import sql
    from tests.schema import create_tables

    copied = database.split("?")[0].rsplit("/", 1)[1]
    schema.copy_to(database)
    fresh = "harness_fresh_migration"
    try:
        migrate(mariadb.dsn(fresh), report=lambda line: None)
        assert create_tables(mariadb.socket, copied) == create_tables(mariadb.socket, fresh)
        versions = "SELECT version FROM schema_migrations ORDER BY version"
        assert sql(database, versions) == sql(mariadb.dsn(fresh), versions)
        assert migrate(database, report=lambda line: None) == []
    finally:
        sql(mariadb.dsn("mysql"), f"DROP DATABASE IF EXISTS {fresh}")
