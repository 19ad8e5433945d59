"""Scenario 12, lookalike identities: every lookalike of a registered email (NFC/NFD,
full-width, ligatures, case and Greek final sigma) is the same account through the whole
stack — signup 409, login, pay and the cached balance all reach it; control and bidi
characters are refused in every text field; and migration 0002, run by `shillings-app
migrate` on a legacy database, rewrites old emails to the canonical form while listing
lookalike accounts, never merging them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import unicodedata

import pymysql
import pytest

from shillings_app import migrations
from shillings_proto import fields
from tests.reliability.api import PASSWORD, User, make_user, money
from tests.reliability.conftest import Shared
from tests.reliability.hostile import check_envelope
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "12. Lookalike identities"
COLLECTOR.describe(SCENARIO, __doc__)
IDENTITIES = 4
LEGACY_GROUPS = 100

WIDE = {chr(c): chr(c - 0x61 + 0xFF41) for c in range(0x61, 0x7B)}  # a-z -> full-width


def _wide(text: str) -> str:
    local, _, domain = text.partition("@")
    return "".join(WIDE.get(c, c) for c in local) + "\uff20" + domain.replace(".", "\uff0e")


def variants(email: str) -> list[str]:
    """Lookalikes of a canonical ``email`` that the old code registered as new accounts."""
    found = {
        unicodedata.normalize("NFD", email),
        email.upper(),
        email.title(),
        _wide(email),
        _wide(email).upper(),
        email.replace("fi", "\ufb01"),
        email.replace("\u03c3@", "\u03c2@"),
        email.replace("\u03c3", "\u03a3").upper(),
        " " + email.upper() + " ",
    }
    found.discard(email)
    return sorted(found)


REFUSED = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u202d", "\u2066", "\u200f"]


def _signup(client: Client, email: str, **over: str) -> tuple[int, dict]:
    body = {
        "first_name": "Look",
        "last_name": "Alike",
        "email": email,
        "phone": "+15550001111",
        "password": PASSWORD,
        **over,
    }
    status, answer, _ = client.call("POST", "/v1/signup", body)
    return status, answer


def test_lookalikes_are_one_account_through_the_stack(shared: Shared) -> None:
    stack = shared.stack
    client = Client(stack.port)
    payer = make_user(stack.port, "lookalike-payer@example.com")
    money(client, shared.ledger, shared.stats, payer, 100_000)
    originals = []
    for n in range(IDENTITIES):
        email = f"jos\u00e9.fi{n}.x\u03c3@example.com"
        originals.append(make_user(stack.port, email))
    tried = second_accounts = logins = payments = fresh_reads = 0
    for original in originals:
        reader = Client(stack.port, original.token)
        for variant in variants(original.email):
            tried += 1
            status, answer = _signup(client, variant)
            if status == 201:
                second_accounts += 1
            assert (status, answer["status"].get("reason")) == (409, "email_taken"), variant
            status, answer, _ = client.call(
                "POST", "/v1/login", {"email": variant, "password": PASSWORD}
            )
            assert status == 200 and answer["user"]["user_id"] == original.user_id, answer
            assert answer["user"]["email"] == original.email
            logins += 1
            status, before, _ = reader.call("GET", "/v1/account")  # fills the cache
            assert status == 200
            alias = User(original.user_id, variant, original.token)
            record = money(client, shared.ledger, shared.stats, payer, 1, receiver=alias)
            assert record.status == 200, record
            payments += 1
            status, after, _ = reader.call("GET", "/v1/account")
            paid = int(after["user"]["balance"].replace(".", "")) - int(
                before["user"]["balance"].replace(".", "")
            )
            assert paid == 1, (variant, before, after)
            fresh_reads += 1
        reader.close()
    client.close()
    accounts = stack.query(
        "SELECT COUNT(*) FROM users WHERE first_name = 'Look' AND last_name = 'Alike'"
    )[0][0]
    COLLECTOR.add(
        SCENARIO,
        identities=IDENTITIES,
        lookalike_signups_tried=tried,
        second_accounts_created=int(accounts),
        logins_by_lookalike_reaching_the_account=logins,
        payments_by_lookalike_reaching_the_account=payments,
        balances_read_fresh_after_those_payments=fresh_reads,
    )
    assert second_accounts == 0 and accounts == 0
    shared.check(SCENARIO)


def test_control_and_bidi_characters_refused_everywhere(shared: Shared) -> None:
    stack = shared.stack
    client = Client(stack.port)
    payer = make_user(stack.port, "bidi-payer@example.com")
    money(client, shared.ledger, shared.stats, payer, 1_000)
    refused = accepted = 0
    for n, char in enumerate(REFUSED):
        cases = [
            ("/v1/signup", "email", f"ev{char}il{n}@example.com"),
            ("/v1/signup", "first_name", f"Ev{char}il"),
            ("/v1/signup", "middle_name", f"{char}K"),
            ("/v1/signup", "last_name", f"Love{char}"),
            ("/v1/login", "email", f"lookalike-payer{char}@example.com"),
            ("/v1/pay", "receiver_email", f"lookalike{char}-payer@example.com"),
        ]
        for path, field, value in cases:
            if path == "/v1/signup":
                over = {field: value}
                over.setdefault("email", f"refused-{n}-{field}@example.com")
                status, answer = _signup(client, **over)  # type: ignore[arg-type]
            elif path == "/v1/login":
                status, answer, _ = client.call("POST", path, {field: value, "password": PASSWORD})
            else:
                status, answer, _ = client.call(
                    "POST",
                    path,
                    {field: value, "amount": "0.01"},
                    {"Authorization": f"Bearer {payer.token}"},
                )
            if status < 400:
                accepted += 1
            assert (status, answer["status"]["reason"]) == (400, "invalid_request"), (path, field)
            assert field in answer["status"]["message"]
            refused += 1
    status, raw = _raw_surrogate(stack.port)
    check_envelope(status, raw)
    assert status == 400
    client.close()
    stored = stack.query("SELECT first_name, middle_name, last_name, email FROM users")
    hidden = sum(
        1 for row in stored for value in row if value and fields.FORBIDDEN_RE.search(value)
    )
    COLLECTOR.add(
        SCENARIO,
        refused_characters_tried=len(REFUSED),
        refused_field_values=refused,
        accepted_field_values=accepted,
        stored_values_with_refused_characters=hidden,
    )
    assert accepted == 0 and hidden == 0
    shared.check(SCENARIO)


def _raw_surrogate(port: int) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        body = b'{"first_name":"A\\ud800","last_name":"L","email":"s@example.com",'
        body += b'"phone":"+15550001111","password":"12345678"}'
        conn.request("POST", "/v1/signup", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _legacy_rows() -> list[tuple[str, str]]:
    """(email as the old code stored it, first name), in id order, per group of five."""
    rows = []
    for i in range(LEGACY_GROUPS):
        rows += [
            (f"jos\u00e9{i}@example.com", "Nfc"),  # canonical already
            (unicodedata.normalize("NFD", f"jos\u00e9{i}@example.com"), "Nfd"),  # collides
            (f"ADA{i}@EXAMPLE.COM".lower().translate(str.maketrans(WIDE)), "Wide"),  # collides
            (f"ada{i}@example.com", "Ada"),  # canonical, registered after its lookalike
            (f"\ufb01sh{i}@example.com", "Liga"),  # rewritten
            (f"{i}X\u03a3@EXAMPLE.COM".lower(), "Sigma"),  # lower() keeps a final sigma
            (f"evil{i}\x1b@example.com", "Esc"),  # refused character, reported
            (f"bidi{i}@example.com", "Ev\u202eil"),  # refused character in a name, reported
        ]
    return rows


def test_migration_lists_lookalike_accounts_and_never_merges(
    shared: Shared, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = shared.stack
    name = "legacy_identities"
    dsn = f"mysql://root@localhost/{name}?unix_socket={stack.mysql_socket}"
    admin = stack.db()
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        first = migrations.available()[:1]
        monkeypatch.setattr(migrations, "available", lambda: first)
        migrations.migrate(dsn)
        monkeypatch.undo()
        rows = _legacy_rows()
        legacy = pymysql.connect(
            unix_socket=stack.mysql_socket, user="root", database=name, autocommit=True
        )
        with legacy.cursor() as cur:
            for n, (email, first_name) in enumerate(rows):
                cur.execute(
                    "INSERT INTO users (first_name, last_name, email, phone, balance,"
                    " created_at, updated_at) VALUES (%s, 'L', %s, '+15550000000', %s,"
                    " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                    (first_name, email, n + 1),
                )
                cur.execute(
                    "INSERT INTO credentials (user_id, email, password, updated_at)"
                    " VALUES (LAST_INSERT_ID(), %s, 'x', UTC_TIMESTAMP(6))",
                    (email,),
                )
            cur.execute("SELECT user_id, balance FROM users ORDER BY user_id")
            before = cur.fetchall()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHILLINGS_")}
        env.update(SHILLINGS_MYSQL_DSN=dsn, SHILLINGS_VAR=str(stack.var))
        command = [
            sys.executable,
            "-c",
            "import sys; from shillings_app.cli import main; sys.exit(main())",
            "migrate",
        ]
        started = time.monotonic()
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
        assert run.returncode == 0, run.stderr
        assert "applied 0002_canonical_emails" in run.stdout
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.stdout.strip() == "schema up to date", again.stdout
        with legacy.cursor() as cur:
            cur.execute("SELECT user_id, balance FROM users ORDER BY user_id")
            after = cur.fetchall()
            cur.execute("SELECT email FROM users ORDER BY user_id")
            emails = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT problem, COUNT(*) FROM identity_review GROUP BY problem")
            review = dict(cur.fetchall())
            cur.execute(
                "SELECT COUNT(*) FROM users u JOIN credentials c USING (user_id)"
                " WHERE u.email <> c.email"
            )
            (mismatched,) = cur.fetchone()
        legacy.close()
        rewritten = sum(1 for (old, _), new in zip(rows, emails, strict=True) if old != new)
        collisions = run.stderr.count("not merged")
        COLLECTOR.add(
            SCENARIO,
            legacy_accounts=len(rows),
            legacy_emails_rewritten=rewritten,
            legacy_collisions_listed=int(review.get("email_collision", 0)),
            legacy_invalid_emails_listed=int(review.get("invalid_email", 0)),
            legacy_names_listed=int(review.get("forbidden_character", 0)),
            legacy_accounts_merged=len(before) - len(after),
            legacy_balances_changed=sum(1 for a, b in zip(before, after, strict=True) if a != b),
            migration_seconds=f"{seconds:.2f}",
        )
        assert len(after) == len(before) and after == before  # nothing merged, no cent moved
        assert rewritten == 2 * LEGACY_GROUPS  # the ligature and the final sigma
        assert review == {
            "email_collision": 2 * LEGACY_GROUPS,
            "invalid_email": LEGACY_GROUPS,
            "forbidden_character": LEGACY_GROUPS,
        }
        assert collisions == 2 * LEGACY_GROUPS and mismatched == 0
        assert "flush the Redis profile cache" in run.stderr
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
