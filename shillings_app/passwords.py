"""bcrypt hashing, always in a thread so the reactor never blocks."""

from __future__ import annotations

import bcrypt
from twisted.internet.threads import deferToThread

_DUMMY_PASSWORD = b"shillings-dummy-password"


class PasswordHasher:
    """Hashes and checks passwords with bcrypt at a fixed cost."""

    def __init__(self, cost: int) -> None:
        self.cost = cost
        self._dummy_hash: bytes | None = None

    async def hash(self, password: str) -> str:
        hashed: bytes = await deferToThread(
            bcrypt.hashpw, password.encode("utf-8"), bcrypt.gensalt(rounds=self.cost)
        )
        return hashed.decode("ascii")

    async def verify(self, password: str, hashed: str) -> bool:
        secret = password.encode("utf-8")
        if len(secret) > 72:
            # bcrypt 5 refuses these; no stored password can be that long. Spend the same time.
            await self.verify_dummy(password)
            return False
        return bool(await deferToThread(bcrypt.checkpw, secret, hashed.encode("ascii")))

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
        await deferToThread(bcrypt.checkpw, password.encode("utf-8")[:72], self._dummy_hash)
