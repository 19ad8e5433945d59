"""Python steps of migrations, for what SQL cannot compute; each runs on a migration's
connection inside the transaction that records the migration as applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from shillings_proto import fields, pb

Report = Callable[[str], None]


def _review(
    cur: Any, user_id: int, field: str, value: str, problem: str, other: int | None
) -> None:
    cur.execute(
        "INSERT IGNORE INTO identity_review"
        " (user_id, field, value, problem, conflicts_with, found_at)"
        " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
        (user_id, field, value, problem, other),
    )


def canonical_emails(cur: Any, report: Report) -> None:
    """Rewrite every email to ``fields.email_key`` form, by ascending ``user_id``.

    An email already canonical keeps its account; among accounts whose emails fold to the
    same form, the earliest gets it. A later one keeps its email as it was (so it is
    never merged into the other) and is listed in ``identity_review`` as an
    ``email_collision``; so is an email or name holding a refused character.
    """
    cur.execute(
        "SELECT user_id, email, first_name, middle_name, last_name FROM users"
        " ORDER BY user_id FOR UPDATE"
    )
    rows = cur.fetchall()
    owner = {row[1]: int(row[0]) for row in rows}
    changed = 0
    for user_id, email, *names in rows:
        for field, value in zip(("first_name", "middle_name", "last_name"), names, strict=True):
            if value and fields.FORBIDDEN_RE.search(value):
                _review(cur, user_id, field, value, "forbidden_character", None)
                report(f"user {user_id}: {field} {value!a} holds a refused character")
        try:
            key = fields.email(email)
        except fields.FieldError as e:
            _review(cur, user_id, "email", email, "invalid_email", None)
            report(f"user {user_id}: email {email!a} left unchanged: {e}")
            continue
        if key == email:
            continue
        other = owner.get(key)
        if other is not None:
            _review(cur, user_id, "email", email, "email_collision", other)
            report(
                f"user {user_id}: email {email!a} left unchanged: its canonical form {key!a}"
                f" belongs to user {other}; not merged, resolve by hand"
            )
            continue
        cur.execute(
            "UPDATE users SET email = %s, updated_at = UTC_TIMESTAMP(6) WHERE user_id = %s",
            (key, user_id),
        )
        cur.execute("UPDATE credentials SET email = %s WHERE user_id = %s", (key, user_id))
        del owner[email]
        owner[key] = user_id
        changed += 1
    if changed:
        report(
            f"{changed} email(s) rewritten to their canonical form: flush the Redis profile"
            " cache (tokens issued before carry the old email)"
        )


_PAGE = 1000


def stored_result(response: bytes) -> tuple[str, int, int] | None:
    """(transaction id, resulting balance, status code) of a serialized ``pb.Response`` of a
    pay or top-up, as the app server stored them until 0003; None if it holds none."""
    try:
        message = pb.Response.FromString(response)
    except DecodeError:
        return None
    if message.WhichOneof("body") == "pay" and message.pay.transaction_id:
        return message.pay.transaction_id, message.pay.sender_balance, message.status.code
    if message.WhichOneof("body") == "topup" and message.topup.transaction_id:
        return message.topup.transaction_id, message.topup.balance, message.status.code
    return None


def idempotency_results(cur: Any, report: Report) -> None:
    """Fill each key's result columns from its stored response, a page at a time (a
    temporary table, then one joined UPDATE per page). A response that names no
    transaction stops the migration: its key could not be replayed any more."""
    cur.execute(
        "CREATE TEMPORARY TABLE idempotency_results ("
        " user_id BIGINT UNSIGNED NOT NULL, idem_key VARCHAR(255) CHARACTER SET ascii"
        " COLLATE ascii_bin NOT NULL, transaction_id CHAR(36) CHARACTER SET ascii"
        " COLLATE ascii_bin NOT NULL, balance BIGINT NOT NULL, status SMALLINT UNSIGNED NOT NULL,"
        " PRIMARY KEY (user_id, idem_key))"
    )
    after: tuple[int, str] = (-1, "")
    converted = 0
    while True:
        cur.execute(
            "SELECT user_id, idem_key, response FROM idempotency_keys"
            " WHERE (user_id > %s OR (user_id = %s AND idem_key > %s))"
            " AND transaction_id IS NULL ORDER BY user_id, idem_key LIMIT %s FOR UPDATE",
            (after[0], after[0], after[1], _PAGE),
        )
        rows = cur.fetchall()
        if not rows:
            break
        results = []
        for user_id, key, response in rows:
            result = stored_result(bytes(response or b""))
            if result is None:
                raise RuntimeError(
                    f"idempotency key {key!a} of user {user_id}: its stored response names no"
                    " transaction; delete or fix the row, then migrate again"
                )
            results.append((user_id, key, *result))
        cur.execute("DELETE FROM idempotency_results")
        cur.executemany(
            "INSERT INTO idempotency_results (user_id, idem_key, transaction_id, balance,"
            " status) VALUES (%s, %s, %s, %s, %s)",
            results,
        )
        cur.execute(
            "UPDATE idempotency_keys AS k JOIN idempotency_results AS r"
            " ON r.user_id = k.user_id AND r.idem_key = k.idem_key"
            " SET k.transaction_id = r.transaction_id, k.balance = r.balance,"
            " k.status = r.status"
        )
        converted += len(rows)
        after = (int(rows[-1][0]), rows[-1][1])
    cur.execute("DROP TEMPORARY TABLE idempotency_results")
    if converted:
        report(f"{converted} idempotency key(s) now store their result as columns")


STEPS: dict[str, Callable[[Any, Report], None]] = {
    "0002_canonical_emails": canonical_emails,
    "0003_idempotency_results": idempotency_results,
}
"""Migration version -> its Python step, run after the version's SQL statements."""
