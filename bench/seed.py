"""Seed a bench stack's database in SQL (signup through the API is bcrypt-bound) and mint
JWTs for the seeded users with the stack's own secret."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import jwt
import pymysql
from pymysql.constants import CLIENT

from shillings_proto.secrets import load_or_create_secret

PASSWORD = "bench-password-1"
BALANCE_CENTS = 10**11
"""Each bench user starts with 1,000,000,000.00: pays of 0.01 never run out."""
TOKEN_TTL_S = 3600
REFUNDABLE_CENTS = 100_000_000
"""The seeded payments refunded by the refund bench: 1,000,000.00, the largest amount."""


@dataclass(frozen=True)
class Seeded:
    users_file: Path
    """All bench users, "user_id<TAB>email<TAB>jwt" per line."""
    history_10_file: Path
    """The user with 10 transactions (one line)."""
    history_100k_file: Path
    """The user with ``history_rows`` transactions (one line)."""
    refunds_file: Path
    """All bench users, each line ending with "<TAB>transaction_id" of a payment it received."""
    users: int
    history_rows: int


def connect(socket_path: Path, *, multi_statements: bool = False) -> pymysql.connections.Connection:
    """A root connection to the bench database (``multi_statements``: as the app's pool, for
    running its transaction functions)."""
    return pymysql.connect(
        unix_socket=str(socket_path),
        user="root",
        database="shillings",
        autocommit=True,
        client_flag=CLIENT.MULTI_STATEMENTS if multi_statements else 0,
        init_command="SET time_zone = '+00:00'",
    )


def _mint(secret: str, user_id: int, email: str, now: int) -> str:
    claims = {
        "sub": str(user_id),
        "email": email,
        "iat": now,
        "exp": now + TOKEN_TTL_S,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _history(cur: pymysql.cursors.Cursor, email: str, rows: int, other: tuple[int, str]) -> int:
    """A user with ``rows`` transactions: odd ones top-ups, even ones payments to ``other``."""
    cur.execute(
        "INSERT INTO users (first_name, middle_name, last_name, email, phone, balance,"
        " created_at, updated_at) VALUES ('History', NULL, 'User', %s, '+15550000001',"
        " %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        (email, BALANCE_CENTS),
    )
    user_id = int(cur.lastrowid)
    cur.execute(
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email, receiver_id,"
        " receiver_email, amount, created_at)"
        " SELECT UUID(), IF(seq %% 2, 'topup', 'payment'),"
        "  IF(seq %% 2, NULL, %s), IF(seq %% 2, NULL, %s),"
        "  IF(seq %% 2, %s, %s), IF(seq %% 2, %s, %s), 100 + seq %% 1000,"
        "  UTC_TIMESTAMP(6) - INTERVAL %s - seq SECOND"
        f" FROM seq_1_to_{int(rows)}",
        (user_id, email, user_id, other[0], email, other[1], rows),
    )
    return user_id


def _refundable(cur: pymysql.cursors.Cursor, users: list[tuple[int, str]]) -> list[str]:
    """One payment of the largest amount to each user, from the next one: the refund bench's
    originals (10^8 refunds of 0.01 each before one is spent)."""
    ids = [str(uuid.uuid4()) for _ in users]
    cur.executemany(
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email, receiver_id,"
        " receiver_email, amount, created_at)"
        " VALUES (%s, 'payment', %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
        [
            (tx, *users[(n + 1) % len(users)], *users[n], REFUNDABLE_CENTS)
            for n, tx in enumerate(ids)
        ],
    )
    return ids


def seed(
    socket_path: Path,
    secret_file: Path,
    out_dir: Path,
    *,
    users: int,
    history_rows: int,
    bcrypt_cost: int,
) -> Seeded:
    """Insert ``users`` bench users with balances and credentials, a user with 10
    transactions and one with ``history_rows``, and a payment to each bench user to refund;
    write their tokens under ``out_dir``."""
    secret = load_or_create_secret(str(secret_file))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=bcrypt_cost)).decode()
    conn = connect(socket_path)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO users (first_name, middle_name, last_name, email, phone, balance,"
                " created_at, updated_at)"
                " SELECT 'Bench', NULL, CONCAT('User', seq), CONCAT('bench', seq, '@example.com'),"
                " '+15550000000', %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)"
                f" FROM seq_1_to_{int(users)}",
                (BALANCE_CENTS,),
            )
            cur.execute(
                "INSERT INTO credentials (user_id, email, password, updated_at)"
                " SELECT user_id, email, %s, UTC_TIMESTAMP(6) FROM users"
                " WHERE email LIKE 'bench%%@example.com'",
                (hashed,),
            )
            cur.execute(
                "SELECT user_id, email FROM users WHERE email LIKE 'bench%%@example.com'"
                " ORDER BY user_id"
            )
            rows = [(int(r[0]), str(r[1])) for r in cur.fetchall()]
            h10 = _history(cur, "history10@example.com", 10, rows[0])
            h100k = _history(cur, "history100k@example.com", history_rows, rows[1])
            originals = _refundable(cur, rows)
    finally:
        conn.close()
    now = int(time.time())
    out_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, people: list[tuple[int, str]], extra: list[str] | None = None) -> Path:
        path = out_dir / name
        tails = [f"\t{e}" for e in extra] if extra else [""] * len(people)
        lines = [
            f"{uid}\t{email}\t{_mint(secret, uid, email, now)}{tail}\n"
            for (uid, email), tail in zip(people, tails, strict=True)
        ]
        path.write_text("".join(lines))
        return path

    return Seeded(
        users_file=write("users.tsv", rows),
        history_10_file=write("history10.tsv", [(h10, "history10@example.com")]),
        history_100k_file=write("history100k.tsv", [(h100k, "history100k@example.com")]),
        refunds_file=write("refunds.tsv", rows, originals),
        users=len(rows),
        history_rows=history_rows,
    )
