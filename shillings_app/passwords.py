"""bcrypt hashing, in threads so the reactor never blocks, through a bounded queue.

At most ``workers`` hashes run at once and at most ``queue`` more wait for a turn; past
that a request is refused at once (``PasswordsBusy``, 503 with a retry-after) instead of
making every login wait behind a flood of signups. A job whose request's deadline passed
while it waited is dropped before it hashes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import bcrypt
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from shillings_app.errors import PasswordsBusy
from shillings_app.storage import DeadlineExceeded, check_deadline

T = TypeVar("T")

_DUMMY_PASSWORD = b"shillings-dummy-password"

log = Logger()


class PasswordHasher:
    """Hashes and checks passwords with bcrypt at a fixed cost."""

    def __init__(self, cost: int, *, workers: int = 2, queue: int = 8) -> None:
        self.cost = cost
        self._dummy_hash: bytes | None = None
        self._turns = DeferredSemaphore(workers)
        self._limit = workers + queue
        self.pending = 0
        """Jobs running or waiting for a turn."""
        self.refused = 0
        """Jobs refused because the queue was full (since start)."""
        self.skipped = 0
        """Jobs dropped unrun because their request's deadline passed while they waited."""

    async def _run(self, what: str, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` in a thread when a turn is free, unless the queue is full or
        the request's deadline has passed by then."""
        if self.pending >= self._limit:
            self.refused += 1
            raise PasswordsBusy()
        self.pending += 1
        try:
            await self._turns.acquire()
            try:
                try:
                    check_deadline(what)
                except DeadlineExceeded:
                    self.skipped += 1
                    log.warn("{what} skipped: its request's deadline passed", what=what)
                    raise
                return await deferToThread(func, *args)
            finally:
                self._turns.release()
        finally:
            self.pending -= 1

    async def hash(self, password: str) -> str:
        hashed: bytes = await self._run(
            "password hash",
            bcrypt.hashpw,
            password.encode("utf-8"),
            bcrypt.gensalt(rounds=self.cost),
        )
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str) -> bool:
        secret = password.encode("utf-8")
        if len(secret) > 72:
            # bcrypt 5 refuses these; no stored password can be that long. Spend the same time.
            await self.verify_dummy(password)
            return False
        return bool(
            await self._run("password check", bcrypt.checkpw, secret, hashed.encode("ascii"))
        )

    async def prepare(self) -> None:
        """Compute the dummy hash up front, so even the first unknown-email login takes the
        time of exactly one check."""
        if self._dummy_hash is None:
            self._dummy_hash = await deferToThread(
                bcrypt.hashpw, _DUMMY_PASSWORD, bcrypt.gensalt(rounds=self.cost)
            )

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of one check, for an unknown email (no user enumeration by timing)."""
        await self.prepare()
        assert self._dummy_hash is not None
        await self._run(
            "password check", bcrypt.checkpw, password.encode("utf-8")[:72], self._dummy_hash
        )
