"""The adbapi connection pool and the retry policy every interaction runs under."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pymysql
from pymysql.constants import CLIENT, SERVER_STATUS
from pymysql.converters import escape_string
from twisted.enterprise import adbapi
from twisted.internet import reactor as _reactor
from twisted.internet import threads
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from shillings_app.config import parse_dsn

T = TypeVar("T")

ER_DUP_ENTRY = 1062
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
CR_SERVER_GONE_ERROR = 2006
CR_SERVER_LOST = 2013
CR_CONNECTION_ERROR = 2002
CR_CONN_HOST_ERROR = 2003

CONNECT_CODES = frozenset({CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_SERVER_LOST})
"""MySQL is not reachable (yet): what a process starting beside it waits out."""

ER_CON_COUNT_ERROR = 1040
ER_WSREP_NOT_READY = 1047
"""Galera: "WSREP has not yet prepared node for application use" (outside the primary
component, or still joining): unavailable, like a server that is down."""
ER_SERVER_SHUTDOWN = 1053
ER_CONNECTION_KILLED = 1927

RECONNECT_CODES = frozenset(
    {0, CR_SERVER_GONE_ERROR, CR_SERVER_LOST, ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED}
)
"""The connection is gone (0 is pymysql's InterfaceError on a connection it closed)."""
CONFLICT_CODES = frozenset({ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT})
MAX_CONFLICT_RETRIES = 8
"""Conflicts retried per interaction. On Galera two nodes racing for the same rows can lose
certification to each other several times in a row; the growing, jittered pause between
attempts (``conflict_pause``) lets one of them through."""


def conflict_pause(conflicts: int) -> float:
    """Seconds to wait before retry number ``conflicts``: random, up to 10 ms doubling
    each time, at most 100 ms."""
    return random.uniform(0, min(0.1, 0.005 * 2**conflicts))


class DatabaseUnavailable(Exception):
    """MySQL cannot be reached or keeps failing; the request may be retried later."""


class KeptConflicting(DatabaseUnavailable):
    """Every attempt of the transaction hit a lock conflict (deadlock, lock wait timeout,
    Galera certification or brute-force abort): rolled back each time, so it had no
    effect."""


class DeadlineExceeded(DatabaseUnavailable):
    """The request's deadline passed before its work could start or its transaction could
    commit; it was refused or rolled back, so it had no effect."""


@dataclass
class RequestScope:
    """The request being served, passed explicitly from the dispatcher to every step that
    may wait: its deadline and whether its work may have taken effect."""

    deadline: float | None
    """``time.monotonic()`` after which no work of the request may start or commit."""
    reached_commit: bool = False
    """A transaction of the request sent COMMIT (committed, or its outcome is unknown)."""

    def check(self, desc: str) -> None:
        """Raise ``DeadlineExceeded`` when the request's deadline has passed."""
        _check_deadline(self.deadline, desc)

    def time_left(self) -> float | None:
        """Seconds until the request's deadline (None: it has none)."""
        return None if self.deadline is None else self.deadline - time.monotonic()


class RetryTransaction(Exception):
    """Raised inside an interaction to roll back and run it again (e.g. a lost race on a
    unique key whose winner the next attempt will see)."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters (escaped by pymysql), run alone (``execute``) or
    with others in one round trip (``Txn.commit_with``)."""

    sql: str
    args: Sequence[Any] = ()
    duplicate_retries: bool = False
    """A duplicate key (1062) here is a concurrent twin that committed first: roll back and
    run again (``RetryTransaction``), so the retry finds the winner."""


def execute(txn: Any, statement: Statement | None) -> None:
    """Run ``statement`` (None: nothing to do) in the caller's transaction."""
    if statement is None:
        return
    try:
        txn.execute(statement.sql, statement.args)
    except pymysql.err.IntegrityError as e:
        if statement.duplicate_retries and error_code(e) == ER_DUP_ENTRY:
            raise RetryTransaction() from None
        raise


def mogrify(cursor: Any, sql: str, args: Any) -> str:
    """``cursor.mogrify(sql, args)``, the same text: ints, strings and None of a sequence
    of arguments are escaped here as pymysql escapes them, each in one step instead of
    several calls of its ``escape`` (a payment's statements carry ~30 arguments); any
    other value, and dict arguments, are left to pymysql."""
    if args is None:
        return sql
    conn = cursor.connection
    if (
        not isinstance(args, (list, tuple))
        or conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
    ):
        return str(cursor.mogrify(sql, args))
    escape = conn.escape
    literals = []
    for arg in args:
        kind = type(arg)
        if kind is int:
            literals.append(str(arg))
        elif kind is str:
            literals.append("'" + escape_string(arg) + "'")
        elif arg is None:
            literals.append("NULL")
        else:
            literals.append(escape(arg))
    try:
        return sql % tuple(literals)
    except TypeError as e:
        raise pymysql.err.ProgrammingError(str(e)) from None


@dataclass
class Attempt:
    """One attempt of ``Database.run``: its deadline, and how far it got."""

    desc: str
    deadline: float | None
    reached_commit: bool = False
    """COMMIT was (or is being) sent: the outcome is unknown until its answer came."""
    committed: bool = False
    """COMMIT was answered OK (by ``Txn.commit_with``)."""

    def check(self) -> None:
        """Raise ``DeadlineExceeded`` when the deadline has passed."""
        _check_deadline(self.deadline, self.desc)


class Txn:
    """What a transaction function gets: the pymysql cursor (``execute``, ``fetchall``,
    ``nextset`` …) and ``commit_with``, which ends the transaction in the round trip of its
    last statements."""

    def __init__(self, cursor: Any, attempt: Attempt, *, one_trip: bool = True) -> None:
        self._cursor = cursor
        self._connection = cursor.connection
        self.attempt = attempt
        self.one_trip = one_trip
        """Statements may share a round trip (multi-statement queries). False on a Galera
        cluster: there a BF abort between the statements of one query rolls back those
        before it, commits those after it (the query's COMMIT, in a new transaction) and
        answers 1213 (tests/cluster/test_multi_statement.py), so each statement goes alone
        and COMMIT on its own."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, sql: str, args: Any = None) -> Any:
        if self.attempt.committed:
            raise RuntimeError(f"{self.attempt.desc}: a statement after COMMIT")
        return self._cursor.execute(mogrify(self._cursor, sql, args))

    def results(self, statements: Sequence[Statement]) -> list[tuple[tuple[Any, ...], ...]]:
        """Run ``statements`` in one round trip (statement by statement when not
        ``one_trip``) and return each one's rows, in order."""
        if not self.one_trip:
            rows = []
            for statement in statements:
                execute(self, statement)
                rows.append(self._cursor.fetchall())
            return rows
        self.execute("; ".join(s.sql for s in statements), [a for s in statements for a in s.args])
        rows = [self._cursor.fetchall()]
        while len(rows) < len(statements) and self._cursor.nextset():
            rows.append(self._cursor.fetchall())
        return rows

    def commit_with(self, statements: Sequence[Statement | None]) -> None:
        """Run ``statements`` (None ones skipped) and COMMIT, in one round trip (a
        multi-statement query), reading every result. MariaDB stops at the first statement
        that fails: then COMMIT was not run, so the outcome is known (the caller rolls back)
        and a duplicate of a ``duplicate_retries`` statement becomes ``RetryTransaction``.
        ``reached_commit`` is set before sending: a connection lost in this round trip
        leaves the outcome unknown. Not ``one_trip``: each statement, then COMMIT, alone;
        committed all the same (a caller may raise after it: ``remembering_refusals``)."""
        todo = [s for s in statements if s is not None]
        if self.attempt.committed:
            raise RuntimeError(f"{self.attempt.desc}: a second COMMIT")
        if not self.one_trip:
            for statement in todo:
                execute(self, statement)
            self.commit()
            return
        script = ";".join([*(mogrify(self._cursor, s.sql, s.args) for s in todo), "COMMIT"])
        self.attempt.check()
        self.attempt.reached_commit = True
        done = 0
        try:
            self._cursor.execute(script)
            done = 1
            while self._cursor.nextset():
                done += 1
        except pymysql.err.MySQLError as e:
            code = error_code(e)
            if done < len(todo) and code is not None and not (code == 0 or 2000 <= code < 3000):
                # A server's error answer to statement ``done``: nothing after it ran.
                self.attempt.reached_commit = False
                if todo[done].duplicate_retries and code == ER_DUP_ENTRY:
                    raise RetryTransaction() from None
            raise
        self.attempt.committed = True

    def commit(self) -> None:
        """COMMIT alone (``Database.run`` ends with it unless the function committed);
        ``reached_commit`` is set before sending: a connection lost meanwhile leaves the
        outcome unknown."""
        self.attempt.check()
        self.attempt.reached_commit = True
        self._connection.commit()
        self.attempt.committed = True


def error_code(exc: BaseException) -> int | None:
    """The MySQL error number of a pymysql error, else None."""
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None


def _check_deadline(deadline: float | None, desc: str) -> None:
    """Raise ``DeadlineExceeded`` (rolling a transaction back) once ``deadline`` passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded(f"{desc}: the request's deadline has passed")


def init_command(sync_wait: int) -> str:
    """The session settings of every connection. ``sync_wait`` > 0 is Galera's
    ``wsrep_sync_wait`` (1: causal reads: a read waits until this node has applied every
    write the cluster committed before it, so a balance read on one node sees a payment
    answered by another)."""
    command = "SET time_zone = '+00:00', innodb_lock_wait_timeout = 3"
    if sync_wait:
        command += f", wsrep_sync_wait = {int(sync_wait)}"
    return command


class Database:
    """An adbapi ConnectionPool of pymysql connections with bounded retries."""

    log = Logger()

    def __init__(
        self,
        dsn: str,
        *,
        pool_min: int = 3,
        pool_max: int = 10,
        clock: IReactorTime | None = None,
        retries: Counter[str] | None = None,
        sync_wait: int = 0,
    ) -> None:
        self._clock: IReactorTime = clock if clock is not None else _reactor  # type: ignore[assignment]
        kwargs = parse_dsn(dsn)
        self._pool = adbapi.ConnectionPool(
            "pymysql",
            cp_min=pool_min,
            cp_max=pool_max,
            cp_reconnect=True,
            cp_noisy=False,
            init_command=init_command(sync_wait),
            client_flag=0 if sync_wait else CLIENT.MULTI_STATEMENTS,
            connect_timeout=5,
            **kwargs,
        )
        # After MySQL restarts, every pooled connection is dead and each is found out by one
        # failed attempt, so allow as many reconnects as there are connections.
        self._max_reconnects = pool_max
        self._one_trip = not sync_wait
        """Multi-statement round trips (``Txn.one_trip``): off on a Galera cluster."""
        self.retries: Counter[str] = Counter() if retries is None else retries
        """Retries so far by cause: ``reconnect``, ``lock_conflict``, ``certification``
        (Galera: a conflicting write committed first on another node), ``retry_transaction``
        (``retries`` when given: a count kept across pools, e.g. an app server's restarts)."""

    def close(self) -> None:
        self._pool.close()

    def pool_use(self) -> tuple[int, int]:
        """Pool threads running a transaction now, and the most the pool runs at once."""
        return len(self._pool.threadpool.working), self._pool.max

    async def run(
        self, desc: str, func: Callable[..., T], *args: Any, scope: RequestScope | None = None
    ) -> T:
        """Run ``func(txn, *args)`` in one DB transaction, retrying: after a lost connection
        (on another connection, up to the pool size; never when the loss came at commit, as
        the outcome is then unknown), and a few times after a deadlock / lock wait timeout
        or a ``RetryTransaction``. ``desc`` names the transaction in logs and errors; no
        attempt starts or commits after the deadline of ``scope`` (the request's)."""
        reconnects = 0
        conflicts = 0
        deadline = scope.deadline if scope is not None else None
        while True:
            attempt = Attempt(desc, deadline)
            try:
                return await threads.deferToThreadPool(
                    _reactor,  # type: ignore[arg-type]
                    self._pool.threadpool,
                    self._interact,
                    attempt,
                    func,
                    args,
                )
            except RetryTransaction:
                conflicts += 1
                self.retries["retry_transaction"] += 1
                if conflicts > MAX_CONFLICT_RETRIES:
                    raise KeptConflicting(f"{desc}: too many retries") from None
            except pymysql.err.MySQLError as e:
                code = error_code(e)
                if (
                    code in RECONNECT_CODES
                    and reconnects < self._max_reconnects
                    and not attempt.reached_commit
                ):
                    reconnects += 1
                    self.retries["reconnect"] += 1
                    self.log.info(
                        "{desc}: MySQL connection lost ({code}); retrying", desc=desc, code=code
                    )
                    continue
                if code in CONFLICT_CODES:
                    # A deadlock, a lock wait timeout, or (Galera) a write set that failed
                    # certification at COMMIT because a conflicting one committed first on
                    # another node: each rolled everything back, so even at COMMIT the
                    # outcome is known (nothing committed) and the retry is safe.
                    at_commit, attempt.reached_commit = attempt.reached_commit, False
                if code in CONFLICT_CODES and conflicts < MAX_CONFLICT_RETRIES:
                    conflicts += 1
                    cause = "certification" if at_commit else "lock_conflict"
                    self.retries[cause] += 1
                    self.log.info(
                        "{desc}: {what} ({code}); retry {n}",
                        desc=desc,
                        what="certification conflict at commit" if at_commit else "lock conflict",
                        code=code,
                        n=conflicts,
                    )
                    await deferLater(self._clock, conflict_pause(conflicts))
                    continue
                if code in CONFLICT_CODES:
                    raise KeptConflicting(f"{desc}: {e}") from e
                if (
                    code is None
                    or 2000 <= code < 3000
                    or code in RECONNECT_CODES
                    or code in (ER_CON_COUNT_ERROR, ER_WSREP_NOT_READY)
                ):
                    raise DatabaseUnavailable(f"{desc}: {e}") from e
                raise
            finally:
                if scope is not None and attempt.reached_commit:
                    scope.reached_commit = True

    def _interact(self, attempt: Attempt, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        """In a pool thread: ``func(txn, *args)`` on the thread's connection, then COMMIT
        unless ``func`` committed (``Txn.commit_with``); ROLLBACK on any error (adbapi's
        rollback, which also finds a dead connection and replaces it)."""
        conn = self._pool.connectionFactory(self._pool)
        try:
            attempt.check()
            cursor = conn.cursor()
            txn = Txn(cursor, attempt, one_trip=self._one_trip)
            result = func(txn, *args)
            cursor.close()
            if not attempt.committed:
                txn.commit()
            return result
        except BaseException:
            try:
                conn.rollback()
            except BaseException:
                self.log.failure("{desc}: rollback failed", desc=attempt.desc)
            raise
