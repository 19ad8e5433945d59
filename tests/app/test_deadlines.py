"""Deadlines (issue 10): a request carries the moment its client stops waiting, and the app
server does no work past it, however long the frame waited to be read; password work is a
bounded queue; on stop the server drains what it read and says what it did not (GoAway)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.task import deferLater

from shillings_proto.framing import NotProcessedError, RequestTimeoutError, ShillingsClientProtocol
from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, new_session, row_locked, sql
from tests.conftest import TEST_JWT_SECRET


def _transactions(dsn: str) -> int:
    return int(sql(dsn, "SELECT COUNT(*) FROM transactions")[0][0])


async def _sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def _until(predicate, within: float) -> bool:
    for _ in range(int(within / 0.05)):
        if predicate():
            return True
        await _sleep(0.05)
    return bool(predicate())


def _serve(tmp_path: Path, dsn: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``shillings-app serve`` as its own process on a unix socket; (process, address, log)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHILLINGS_")}
    env.update(
        SHILLINGS_VAR=str(tmp_path),
        SHILLINGS_MYSQL_DSN=dsn,
        SHILLINGS_APP_LISTEN=f"unix:{tmp_path}/app.sock",
        SHILLINGS_JWT_SECRET=TEST_JWT_SECRET,
        SHILLINGS_BCRYPT_COST="4",
    )
    log = tmp_path / "app.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from shillings_app.cli import main; sys.exit(main())",
                "serve",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"unix:{tmp_path}/app.sock", log


@pytest_twisted.ensureDeferred
async def test_requests_queued_while_the_app_is_stalled_are_refused_after_their_deadline(
    client, app_server, tmp_path
):
    """SIGSTOP the app server, send a pay without a key, a pay with a key and a top-up
    (each waits 1 s), SIGCONT it after their deadlines: none of them is applied."""
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    assert (await payer.topup(10_000)).status.code == 200
    before = _transactions(app_server.dsn)
    proc, address, log = _serve(tmp_path, app_server.dsn)
    stalled: ShillingsClientProtocol | None = None
    try:
        assert await _until(lambda: os.path.exists(address[5:]) or proc.poll() is not None, 30)
        assert proc.poll() is None, log.read_text()
        stalled = await connectProtocol(
            clientFromString(reactor, address), ShillingsClientProtocol()
        )
        os.kill(proc.pid, signal.SIGSTOP)
        calls = [
            stalled.call(messages.pay(payer.user_id, payer.token_id, payee.email, 100), 1.0),
            stalled.call(
                messages.pay(payer.user_id, payer.token_id, payee.email, 200, "stalled-pay"), 1.0
            ),
            stalled.call(messages.topup(payer.user_id, payer.token_id, 300, "stalled-top"), 1.0),
        ]
        results = await defer.DeferredList(calls, consumeErrors=True)
        assert all(not ok and r.check(RequestTimeoutError) for ok, r in results)
        await _sleep(0.5)
        os.kill(proc.pid, signal.SIGCONT)
        # The server reads the three frames now, and refuses each: its deadline has passed.
        assert await _until(lambda: log.read_text().count("status=503") >= 3, 30), log.read_text()
        refused = [line for line in log.read_text().splitlines() if "status=503" in line]
        assert sorted(line.split()[3] for line in refused) == ["PAY", "PAY", "TPU"]
        assert _transactions(app_server.dsn) == before
        assert await payer.balance() == 10_000
        assert await payee.balance() == 0
        # The same server still does work that is on time.
        on_time = await stalled.call(messages.topup(payer.user_id, payer.token_id, 1), 5.0)
        assert on_time.status.code == 200
        assert _transactions(app_server.dsn) == before + 1
    finally:
        if stalled is not None and stalled.is_connected:
            stalled.transport.loseConnection()
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest_twisted.ensureDeferred
async def test_a_request_read_after_its_deadline_is_refused_with_no_effect(client, app_server):
    session = await new_session(client)
    request = messages.topup(session.user_id, session.token_id, 500, "late-key")
    request.deadline_ms = int((time.time() - 1) * 1000)
    response = await client.call(request)
    assert (response.status.code, response.status.reason) == (503, "unavailable")
    assert response.status.no_effect
    assert response.status.message == "could not be completed in time"
    assert await session.balance() == 0
    assert _transactions(app_server.dsn) == 0


@pytest_twisted.ensureDeferred
async def test_database_failure_before_commit_says_no_effect(make_server, connect):
    """MySQL unreachable: the request never reached COMMIT, so its 503 says no effect."""
    server = await make_server(mysql_dsn="mysql://root@127.0.0.1:1/nowhere")
    other = await connect(server.address)
    response = await other.call(messages.profile(1, "jti"))
    assert (response.status.code, response.status.message) == (503, "database unavailable")
    assert response.status.no_effect


def _logins(client: ShillingsClientProtocol, email: str, n: int) -> list[defer.Deferred]:
    return [client.call(messages.login(email, PASSWORD), 10.0) for _ in range(n)]


@pytest_twisted.ensureDeferred
async def test_password_work_is_a_bounded_queue(make_server, connect, client):
    """One worker and one queued job: while the worker is busy (held by the test), two
    logins wait for it and a third is refused at once with 503 and a retry-after; the
    waiting ones then succeed."""
    user = await new_session(client)
    server = await make_server(password_workers=1, password_queue=1)
    hasher = server.factory.ctx.passwords
    other = await connect(server.address)
    await hasher._turns.acquire()  # the one worker is busy
    try:
        logins = _logins(other, user.email, 3)
        # Whichever reaches the queue third (their reads finish in any order) is refused.
        assert await _until(lambda: any(d.called for d in logins), 10)
        (refused,) = [d for d in logins if d.called]
        answer = await refused
        assert (answer.status.code, answer.status.reason) == (503, "unavailable")
        assert (answer.status.no_effect, answer.status.retry_after) == (True, 1)
        assert answer.status.message == "too many password checks in progress"
        assert hasher.pending == 2
    finally:
        hasher._turns.release()
    waiting = [d for d in logins if d is not refused]
    assert [r.status.code for r in await defer.gatherResults(waiting)] == [200, 200]
    assert hasher.refused == 1


@pytest_twisted.ensureDeferred
async def test_password_work_past_its_deadline_is_skipped(make_server, connect, client):
    """A login that waited in the queue past its deadline is dropped before bcrypt runs."""
    user = await new_session(client)
    server = await make_server(password_workers=1, password_queue=4)
    hasher = server.factory.ctx.passwords
    other = await connect(server.address)
    await hasher._turns.acquire()
    try:
        request = messages.login(user.email, PASSWORD)
        deadline = time.time() + 3.0
        request.deadline_ms = int(deadline * 1000)
        late = other.call(request, 10.0)
        # Queued behind the held turn (not refused on arrival), then held past its deadline.
        assert await _until(lambda: hasher.pending == 1, 3.0)
        assert await _until(lambda: time.time() > deadline + 0.05, 5.0)
    finally:
        hasher._turns.release()
    answer = await late
    assert (answer.status.code, answer.status.no_effect) == (503, True)
    assert answer.status.message == "could not be completed in time"
    assert hasher.skipped == 1


@pytest_twisted.ensureDeferred
async def test_stop_drains_what_it_read_and_says_what_it_did_not(app_server, connect):
    """On stop the server answers the requests it had read (here: payments waiting for a
    row lock), tells the client (GoAway) that later ones were not processed, then closes."""
    client = await connect()
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(10_000)
    with row_locked(app_server.dsn, payee.user_id):
        paying = [
            client.call(
                messages.pay(payer.user_id, payer.token_id, payee.email, 100, f"k{n}"), 10.0
            )
            for n in range(3)
        ]
        assert await _until(lambda: app_server.factory.in_flight == 3, 10)
        stopping = defer.ensureDeferred(app_server.stop(drain_timeout=10.0))
        assert await _until(lambda: client.going_away, 5)
        with pytest.raises(NotProcessedError):
            await client.call(messages.topup(payer.user_id, payer.token_id, 1), 5.0)
        assert not stopping.called
    for response in await defer.gatherResults(paying):
        assert response.status.code == 200
    await stopping
    assert await _until(lambda: not client.is_connected, 5)
    assert _transactions(app_server.dsn) == 4
    await app_server.start()


def _login_by(client: ShillingsClientProtocol, email: str, seconds: float) -> defer.Deferred:
    request = messages.login(email, PASSWORD)
    request.deadline_ms = int((time.time() + seconds) * 1000)
    return client.call(request, 10.0)


@pytest_twisted.ensureDeferred
async def test_no_hash_is_started_that_could_not_end_before_the_deadline(
    make_server, connect, client
):
    """With hashes measured at 2 s each, a login with 1 s left is refused before hashing
    (the measured time is untouched: no job ran); one that would wait behind another job
    past its deadline is refused at once as busy."""
    user = await new_session(client)
    server = await make_server(password_workers=1, password_queue=4)
    hasher = server.factory.ctx.passwords
    other = await connect(server.address)
    hasher.seconds_per_job = 2.0
    alone = await _login_by(other, user.email, 1.0)
    assert (alone.status.code, alone.status.no_effect) == (503, True)
    assert alone.status.message == "could not be completed in time"
    assert (hasher.skipped, hasher.seconds_per_job) == (1, 2.0)

    await hasher._turns.acquire()  # the test holds the one worker
    try:
        ahead = _login_by(other, user.email, 10.0)
        assert await _until(lambda: hasher.pending == 1, 10)
        behind = await _login_by(other, user.email, 3.0)  # 2 s wait + 2 s job > 3 s
        assert (behind.status.code, behind.status.retry_after) == (503, 1)
        assert behind.status.message == "too many password checks in progress"
        assert hasher.refused == 1
    finally:
        hasher._turns.release()
    assert (await ahead).status.code == 200
