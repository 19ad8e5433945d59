"""Group commit (docs/ARCHITECTURE.md, "Group commit"): the requests of one operation that
arrive while its transactions are busy are applied together, in one database transaction,
so they share its statements, round trips and the fsync of its COMMIT."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from twisted.internet import defer
from twisted.logger import Logger

from shillings_app.storage import Database, DeadlineExceeded, KeptConflicting, RequestScope
from shillings_app.storage.batch import Outcome
from shillings_app.storage.records import MoneyResult
from shillings_proto.framing import answers_gathered

R = TypeVar("R")
"""A request of the operation, as its batch function takes it."""

BatchTxn = Callable[[Any, Sequence[R]], list[Outcome]]
"""``f(txn, requests)``: one outcome per request, in their order, within one transaction."""


@dataclass
class _Member(Generic[R]):
    request: R
    scope: RequestScope
    answer: defer.Deferred[MoneyResult]

    def late(self) -> bool:
        deadline = self.scope.deadline
        return deadline is not None and time.monotonic() > deadline


class Batcher(Generic[R]):
    """Runs ``txn`` over batches of requests, at most ``in_flight`` at once. A request that
    finds a free slot starts a batch at once (alone, when the server is idle: no added
    wait); one that finds every slot busy waits, and the next batch to start takes every
    waiting request, up to ``max_size``, in arrival order.

    Under sustained load (a batch ended while requests were waiting: ``backlogged``) the
    waiting requests are not spread over the free slots: they wait for the last running
    batch to end and go as one, so the load is served by few, large transactions (each
    transaction costs the app and the database about as much as its requests together). A
    full batch (``max_size`` waiting) still starts in any free slot, and a batch that ends
    with nobody waiting ends the backlog."""

    log = Logger()

    def __init__(
        self, db: Database, name: str, txn: BatchTxn[R], *, in_flight: int, max_size: int
    ) -> None:
        self._db = db
        self.name = name
        self._txn = txn
        self._in_flight = in_flight
        self._max_size = max_size
        self._queue: list[_Member[R]] = []
        self.running = 0
        """Batches in progress."""
        self.backlogged = False
        """The batch that ended last left requests waiting (see the class docstring)."""
        self.sizes: Counter[int] = Counter()
        """Transactions run so far, by the number of requests in them (the metric)."""
        self.conflict_splits = 0
        """Batches run again as two halves after every attempt conflicted (``_split``)."""

    @property
    def waiting(self) -> int:
        """Requests waiting for a batch to start."""
        return len(self._queue)

    async def submit(self, request: R, scope: RequestScope) -> MoneyResult:
        """The outcome of ``request``, answered after its batch's COMMIT returned; raises
        its refusal (``AppError``), ``DeadlineExceeded`` or the batch's database failure."""
        member = _Member(request, scope, defer.Deferred())
        self._queue.append(member)
        if self.running < self._in_flight and (
            not self.backlogged or len(self._queue) >= self._max_size
        ):
            self._start()
        return await member.answer

    def _start(self) -> None:
        batch, self._queue = self._queue[: self._max_size], self._queue[self._max_size :]
        self.running += 1
        defer.ensureDeferred(self._run(batch)).addBoth(self._finished)

    def _finished(self, _: object) -> None:
        self.running -= 1
        self.backlogged = bool(self._queue)
        while (
            self._queue
            and self.running < self._in_flight
            and (self.running == 0 or len(self._queue) >= self._max_size)
        ):
            self._start()

    async def _run(self, members: list[_Member[R]]) -> None:
        """Run the batch until every member is answered: members past their deadline are
        refused (no effect) before it starts, when a deadline passes before COMMIT the
        transaction rolls back and runs again without the late ones, and a batch whose
        every attempt conflicted runs again as two halves (``_split``)."""
        while True:
            members = [m for m in members if not self._refused_late(m)]
            if not members:
                return
            deadlines = [m.scope.deadline for m in members if m.scope.deadline is not None]
            scope = RequestScope(min(deadlines) if deadlines else None)
            self.sizes[len(members)] += 1
            try:
                outcomes = await self._db.run(
                    self.name, self._txn, [m.request for m in members], scope=scope
                )
            except DeadlineExceeded:
                self.log.info(
                    "{name}: a deadline passed before COMMIT; rolled back, running the batch"
                    " of {n} again without the late requests",
                    name=self.name,
                    n=len(members),
                )
                continue
            except Exception as e:
                if isinstance(e, KeptConflicting) and len(members) > 1:
                    await self._split(members)
                    return
                with answers_gathered():
                    for member in members:
                        if scope.reached_commit:
                            member.scope.reached_commit = True
                        member.answer.errback(e)
                return
            with answers_gathered():
                for member, outcome in zip(members, outcomes, strict=True):
                    if isinstance(outcome, MoneyResult):
                        member.answer.callback(outcome)
                    else:
                        member.answer.errback(outcome)
            return

    async def _split(self, members: list[_Member[R]]) -> None:
        """A batch whose every attempt hit a lock conflict (on Galera, write sets of
        another node touching its rows) runs again as two halves, at once: each locks
        fewer rows, so it conflicts less, and a request whose rows stay contended no
        longer fails its batch-mates (down to a batch of one, answered 503 ``no_effect``).
        Nothing was committed (every attempt rolled back), so this is a retry."""
        half = len(members) // 2
        self.conflict_splits += 1
        self.log.info(
            "{name}: a batch of {n} kept conflicting; running it again as {a} and {b}",
            name=self.name,
            n=len(members),
            a=half,
            b=len(members) - half,
        )
        await defer.gatherResults(
            [defer.ensureDeferred(self._run(part)) for part in (members[:half], members[half:])]
        )

    def _refused_late(self, member: _Member[R]) -> bool:
        if not member.late():
            return False
        member.answer.errback(
            DeadlineExceeded(f"{self.name}: the request's deadline passed before its batch")
        )
        return True
