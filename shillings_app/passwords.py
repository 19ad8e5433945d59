"""bcrypt hashing, in threads so the reactor never blocks, through a bounded queue.

At most ``workers`` hashes run at once and at most ``queue`` more wait for a turn; past
that a request is refused at once (``PasswordsBusy``, 503 with a retry-after) instead of
making every login wait behind a flood of signups. It is refused the same way when the jobs
ahead of it (at the measured time per job) would not let it finish before its request's
deadline, and a job is dropped unrun when, its turn come, it could no longer finish in time:
no hash is computed for a request whose client has given up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

import bcrypt
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from shillings_app.errors import PasswordsBusy
from shillings_app.storage import DeadlineExceeded, RequestScope

T = TypeVar("T")

_DUMMY_PASSWORD = b"shillings-dummy-password"

log = Logger()


class PasswordHasher:
    """Hashes and checks passwords with bcrypt at a fixed cost."""

    def __init__(self, cost: int, *, workers: int = 2, queue: int = 8) -> None:
        self.cost = cost
        self._dummy_hash: bytes | None = None
        self._turns = DeferredSemaphore(workers)
        self._workers = workers
        self._limit = workers + queue
        self.pending = 0
        """Jobs running or waiting for a turn."""
        self.refused = 0
        """Jobs refused because the queue was full (since start)."""
        self.skipped = 0
        """Jobs dropped unrun: their turn came too late to finish before their deadline."""
        self.seconds_per_job: float | None = None
        """Moving average of measured jobs (None until one was measured)."""

    def _expected_wait(self) -> float:
        """Seconds until a job queued now starts (0 while a worker is free)."""
        ahead = self.pending - self._workers + 1
        if ahead <= 0 or self.seconds_per_job is None:
            return 0.0
        return math.ceil(ahead / self._workers) * self.seconds_per_job

    def _measured(self, seconds: float) -> None:
        previous = self.seconds_per_job
        self.seconds_per_job = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    async def _run(
        self, what: str, scope: RequestScope, func: Callable[..., T], *args: object
    ) -> T:
        """Run ``func(*args)`` in a thread when a turn is free, unless the queue is full or
        the job could not finish before the deadline of the request (``scope``)."""
        left = scope.time_left()
        job = self.seconds_per_job or 0.0
        wait = self._expected_wait()
        if self.pending >= self._limit or (left is not None and wait > 0 and wait + job > left):
            self.refused += 1
            raise PasswordsBusy()
        self.pending += 1
        try:
            await self._turns.acquire()
            try:
                left = scope.time_left()
                if left is not None and left < (self.seconds_per_job or 0.0):
                    self.skipped += 1
                    log.warn("{what} skipped: it could not end before its deadline", what=what)
                    raise DeadlineExceeded(f"{what}: the request's deadline is too near")
                began = time.monotonic()
                result = await deferToThread(func, *args)
                self._measured(time.monotonic() - began)
                return result
            finally:
                self._turns.release()
        finally:
            self.pending -= 1

    async def hash(self, password: str, scope: RequestScope) -> str:
        hashed: bytes = await self._run(
            "password hash",
            scope,
            bcrypt.hashpw,
            password.encode("utf-8"),
            bcrypt.gensalt(rounds=self.cost),
        )
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str, scope: RequestScope) -> bool:
        secret = password.encode("utf-8")
        if len(secret) > 72:
            # bcrypt 5 refuses these; no stored password can be that long. Spend the same time.
            await self.verify_dummy(password, scope)
            return False
        return bool(
            await self._run("password check", scope, bcrypt.checkpw, secret, hashed.encode("ascii"))
        )

    async def prepare(self) -> None:
        """Compute the dummy hash up front, so even the first unknown-email login takes the
        time of exactly one check."""
        if self._dummy_hash is None:
            began = time.monotonic()
            self._dummy_hash = await deferToThread(
                bcrypt.hashpw, _DUMMY_PASSWORD, bcrypt.gensalt(rounds=self.cost)
            )
            self._measured(time.monotonic() - began)

    async def verify_dummy(self, password: str, scope: RequestScope) -> None:
        """Spend the time of one check, for an unknown email (no user enumeration by timing)."""
        await self.prepare()
        assert self._dummy_hash is not None
        await self._run(
            "password check",
            scope,
            bcrypt.checkpw,
            password.encode("utf-8")[:72],
            self._dummy_hash,
        )
