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


_OWNER = (
    "import sys; from pathlib import Path; from tests.harness import make_scratch;"
    " print(make_scratch(Path(sys.argv[1])), flush=True); sys.stdin.read()"
)


def test_stale_scratch_dirs_are_removed_live_ones_kept(tmp_path):
    """A scratch dir whose session died goes, and the process it left running there is
    stopped; one whose session lives stays, as does a dir without the lock file."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.harness import OWNER_LOCK, SCRATCH_PREFIX, remove_stale_scratch

    root = Path(__file__).resolve().parents[1]

    def owner() -> tuple[subprocess.Popen[str], Path]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _OWNER, str(tmp_path)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        return proc, Path(proc.stdout.readline().strip())

    live, live_dir = owner()
    dead, dead_dir = owner()
    assert dead.stdin is not None
    dead.stdin.close()  # the dead session's owner exits; its dir and its "server" stay
    assert dead.wait(10) == 0
    (dead_dir / "mysql").mkdir()
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"--datadir={dead_dir}/mysql"]
    )
    # Popen can return before the child's command line is readable in /proc (seen: empty).
    cmdline = Path(f"/proc/{orphan.pid}/cmdline")
    for _ in range(200):
        if str(dead_dir).encode() in cmdline.read_bytes():
            break
        time.sleep(0.01)
    being_made = tmp_path / f"{SCRATCH_PREFIX}made"
    being_made.mkdir()
    try:
        assert (live_dir / OWNER_LOCK).exists() and (dead_dir / OWNER_LOCK).exists()
        assert remove_stale_scratch(tmp_path) == [str(dead_dir)]
        assert orphan.wait(10) == -signal.SIGTERM
        assert not dead_dir.exists()
        assert live_dir.is_dir() and being_made.is_dir()
        assert remove_stale_scratch(tmp_path) == []
    finally:
        orphan.kill()
        live.kill()
        live.wait()
    assert remove_stale_scratch(tmp_path) == [str(live_dir)]  # its owner is gone now
