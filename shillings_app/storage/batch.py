"""The state of one group-commit transaction (docs/ARCHITECTURE.md, "Group commit"):
payments or top-ups of many requests applied one after another, in arrival order, to the
balances of rows locked once for all of them, and written in one statement per table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from shillings_app.errors import AppError, IdempotencyKeyReused, Unauthenticated
from shillings_app.storage import events, idempotency, money
from shillings_app.storage.events import NewEvent
from shillings_app.storage.money import LedgerRow, Locked
from shillings_app.storage.records import IdempotencyKey, MoneyResult

Outcome = MoneyResult | AppError
"""What one request of a batch gets: its result, or the refusal it alone earned."""


class MoneyBatch:
    """Users locked once (ascending id, one statement) and the changes of the requests
    applied so far: each request sees the balances its predecessors left, exactly as if
    they had run one after another, and a refused request changes nothing."""

    def __init__(self, txn: Any, locked: dict[int, Locked], hooked: frozenset[int]) -> None:
        """``locked``: the rows of the batch's users as ``money.lock_and_lookup`` locked
        them; ``hooked``: those of them with an enabled webhook endpoint."""
        self._txn = txn
        self._locked = locked
        self._hooked = hooked
        self._balances = {user_id: row.balance for user_id, row in self._locked.items()}
        self.at = money.now()
        """The time of every change of the batch (its ledger rows and events)."""
        self._deltas: dict[int, int] = {}
        self._rows: list[LedgerRow] = []
        self._events: list[NewEvent] = []
        self._keys: list[tuple[int, IdempotencyKey, MoneyResult]] = []
        self._used: dict[tuple[int, str], tuple[IdempotencyKey, MoneyResult]] = {}

    def each(
        self,
        apply: Callable[..., MoneyResult],
        user_id: int,
        idem: IdempotencyKey | None,
        *args: Any,
    ) -> Outcome:
        """Apply one request of ``user_id`` (``apply(self, *args)``); a refusal is its
        outcome alone, stored under its key ``idem`` when it is ``remembered``."""
        try:
            return apply(self, *args)
        except AppError as e:
            if idem is not None and e.remembered:
                self._remember(user_id, idem, idempotency.refusal_result(e))
            return e

    def replay(
        self, user_id: int, idem: IdempotencyKey | None, stored: Sequence[Any]
    ) -> MoneyResult | None:
        """The earlier outcome of ``idem``: stored before (``stored``: the lookup's
        ``idempotency.STORED`` columns) or made earlier in this batch; None when unused;
        ``IdempotencyKeyReused`` when that use was another request."""
        replayed = idempotency.replay(idem, tuple(stored))
        if replayed is not None or idem is None:
            return replayed
        earlier = self._used.get((user_id, idempotency.same_key(idem.key)))
        if earlier is None:
            return None
        if earlier[0].request_hash != idem.request_hash:
            raise IdempotencyKeyReused()
        result = earlier[1]
        if result.refusal is not None:
            raise idempotency.refused(result.status, result.refusal)
        return replace(result, replayed=True)

    def replay_current(self, user_id: int, idem: IdempotencyKey | None) -> MoneyResult | None:
        """``idempotency.replay_current``: the key read current, for a request about to be
        refused after the row locks (its first use may have committed since the lookup)."""
        return idempotency.replay_current(self._txn, user_id, idem)

    def user(self, user_id: int, missing: Callable[[], AppError] = Unauthenticated) -> str:
        """The email of a locked user; ``missing()`` is raised when there is no such user."""
        if user_id not in self._locked:
            raise missing()
        return self._locked[user_id].email

    def balance(self, user_id: int) -> int:
        """The user's balance after the requests applied so far."""
        return self._balances[user_id]

    def available(self, user_id: int) -> int:
        """What the user may spend: balance less their active holds (SPEC §6)."""
        return self._balances[user_id] - self._locked[user_id].held

    def record(
        self,
        row: LedgerRow,
        changes: dict[int, int],
        new_events: Sequence[NewEvent],
        user_id: int,
        idem: IdempotencyKey | None,
        result: MoneyResult,
    ) -> MoneyResult:
        """Apply one request's ledger row, balance ``changes``, events and key; its result."""
        for changed, delta in changes.items():
            self._balances[changed] += delta
            self._deltas[changed] = self._deltas.get(changed, 0) + delta
        self._rows.append(row)
        self._events += new_events
        if idem is not None:
            self._remember(user_id, idem, result)
        return result

    def _remember(self, user_id: int, idem: IdempotencyKey, result: MoneyResult) -> None:
        self._keys.append((user_id, idem, result))
        self._used[(user_id, idempotency.same_key(idem.key))] = (idem, result)

    def commit(self) -> None:
        """Everything applied, one statement per table (balances, ledger, events, keys), and
        COMMIT, all in one round trip (``Txn.commit_with``)."""
        self._txn.commit_with(
            [
                money.balances_statement(self._deltas),
                money.ledger_statement(self._rows),
                events.emit_statement(self._events, self.at, self._hooked),
                idempotency.remember_statement(self._keys),
            ]
        )
