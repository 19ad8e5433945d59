"""Group commit (docs/ARCHITECTURE.md, "Group commit"): the requests of one operation that
arrive while its transactions are busy are applied together, in one database transaction,
so they share its statements, round trips and the fsync of its COMMIT."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from twisted.internet import defer, reactor
from twisted.logger import Logger

from shillings_app.storage import Database, DeadlineExceeded, RequestScope
from shillings_app.storage.batch import Outcome
from shillings_app.storage.records import MoneyResult

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


class _Running(Generic[R]):
    """One running batch, for its ``Batcher``: ``committing`` once it sent the round trip
    carrying its COMMIT (set by ``sent_commit``, in the database thread: a plain attribute
    write, read by the reactor's thread)."""

    def __init__(self, batcher: Batcher[R]) -> None:
        self._batcher = batcher
        self.committing = False

    def sent_commit(self) -> None:
        """Mark the batch committing, and wake the reactor only when requests wait (read
        without a lock: one that arrives just after goes when a batch ends, as it would
        without this), so a lone request's transaction costs no extra reactor turn."""
        self.committing = True
        if self._batcher.waiting:
            reactor.callFromThread(self._batcher.start_waiting)  # type: ignore[attr-defined]


class Batcher(Generic[R]):
    """Runs ``txn`` over batches of requests, at most ``in_flight`` at once. A request that
    finds a free slot starts a batch at once (alone, when the server is idle: no added
    wait); one that finds every slot busy waits, and the next batch to start takes every
    waiting request, up to ``max_size``, in arrival order.

    Under sustained load (a batch ended while requests were waiting: ``backlogged``) the
    waiting requests are not spread over the free slots: they go as one batch when no
    running batch is still *locking* — every running one has locked its rows, applied its
    rules and sent the round trip carrying its COMMIT (``RequestScope.on_commit``) or ended
    — so the load is served by few, large transactions, and the next one takes its locks
    while the last one writes and waits for its COMMIT's fsync. A full batch (``max_size``
    waiting) still starts in any free slot, and a batch that ends with nobody waiting and
    no other batch running ends the backlog."""

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
        self._running: set[_Running[R]] = set()
        self.backlogged = False
        """Requests had to wait: set when a batch ends leaving requests waiting, cleared when
        one ends with none waiting and no other running (see the class docstring)."""
        self.sizes: Counter[int] = Counter()
        """Transactions run so far, by the number of requests in them (the metric)."""

    @property
    def running(self) -> int:
        """Batches in progress."""
        return len(self._running)

    @property
    def locking(self) -> int:
        """Batches in progress that have not yet sent their COMMIT round trip."""
        return sum(1 for batch in self._running if not batch.committing)

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
        running = _Running(self)
        self._running.add(running)
        defer.ensureDeferred(self._run(batch, running)).addBoth(self._finished, running)

    def _finished(self, _: object, running: _Running[R]) -> None:
        self._running.discard(running)
        self.backlogged = bool(self._queue) or (self.backlogged and self.running > 0)
        self.start_waiting()

    def start_waiting(self) -> None:
        """Start the waiting requests as batches while slots are free and no running batch
        is still taking its locks (or a full batch waits)."""
        while (
            self._queue
            and self.running < self._in_flight
            and (self.locking == 0 or len(self._queue) >= self._max_size)
        ):
            self._start()

    async def _run(self, members: list[_Member[R]], running: _Running[R]) -> None:
        """Run the batch until every member is answered: members past their deadline are
        refused (no effect) before it starts, and when a deadline passes before COMMIT the
        transaction rolls back and runs again without the late ones."""
        while True:
            members = [m for m in members if not self._refused_late(m)]
            if not members:
                return
            deadlines = [m.scope.deadline for m in members if m.scope.deadline is not None]
            scope = RequestScope(
                min(deadlines) if deadlines else None, on_commit=running.sent_commit
            )
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
                for member in members:
                    if scope.reached_commit:
                        member.scope.reached_commit = True
                    member.answer.errback(e)
                return
            for member, outcome in zip(members, outcomes, strict=True):
                if isinstance(outcome, MoneyResult):
                    member.answer.callback(outcome)
                else:
                    member.answer.errback(outcome)
            return

    def _refused_late(self, member: _Member[R]) -> bool:
        if not member.late():
            return False
        member.answer.errback(
            DeadlineExceeded(f"{self.name}: the request's deadline passed before its batch")
        )
        return True
