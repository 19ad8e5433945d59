"""Python steps of migrations, for what SQL cannot compute; each runs on a migration's
connection inside the transaction that records the migration as applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shillings_proto import fields

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


STEPS: dict[str, Callable[[Any, Report], None]] = {"0002_canonical_emails": canonical_emails}
"""Migration version -> its Python step, run after the version's SQL statements."""
