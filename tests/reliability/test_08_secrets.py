"""Scenario 8, secrets: none in the repository; the JWT secret generated on first run is
the owner's alone; passwords stored only as bcrypt hashes; never echoed or logged."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import pytest

from tests.reliability.api import PASSWORD, make_user
from tests.reliability.conftest import Shared
from tests.reliability.hostile import Raw
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import ROOT, Client

pytestmark = pytest.mark.slow

SCENARIO = "8. Secrets"
COLLECTOR.describe(SCENARIO, __doc__)
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
SECRET_FILES = re.compile(r"(^|/)(jwt_secret|\.env|id_rsa|id_ed25519)$|\.(pem|key|p12)$")
BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")


def test_no_secret_in_the_repository(shared: Shared) -> None:
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.split(b"\0")
    names = [name.decode() for name in tracked if name]
    assert len(names) > 20
    assert [n for n in names if SECRET_FILES.search(n)] == []
    assert [n for n in names if n.startswith("var/")] == []
    live_secret = (shared.stack.var / "jwt_secret").read_text().strip().encode()
    leaked = []
    for name in names:
        try:
            content = (ROOT / name).read_bytes()
        except OSError:
            continue
        if PRIVATE_KEY.search(content) or live_secret in content:
            leaked.append(name)
    assert leaked == []
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "var/" in ignored
    COLLECTOR.add(SCENARIO, tracked_files_scanned=len(names))


def test_jwt_secret_is_the_owners_alone(shared: Shared) -> None:
    path = shared.stack.var / "jwt_secret"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert re.fullmatch(r"[0-9a-f]{64}", path.read_text().strip())


def test_passwords_only_as_bcrypt_never_echoed_or_logged(shared: Shared) -> None:
    stack = shared.stack
    secret = "Zq9-distinctive-pass"
    client = Client(stack.port)
    answers = []
    signup = {
        "first_name": "Sec",
        "last_name": "Ret",
        "email": "secrets@example.com",
        "phone": "+15550002222",
        "password": secret,
    }
    answers.append(client.call("POST", "/v1/signup", signup))
    answers.append(client.call("POST", "/v1/signup", signup))  # 409 email_taken
    answers.append(client.call("POST", "/v1/signup", {**signup, "email": "bad", "password": "x"}))
    answers.append(client.call("POST", "/v1/login", {"email": signup["email"], "password": "nope"}))
    status, body, response = client.call(
        "POST", "/v1/login", {"email": signup["email"], "password": secret}
    )
    answers.append((status, body, response))
    assert status == 200, body
    authed = Client(stack.port, body["token"])
    answers.append(authed.call("GET", "/v1/account"))
    answers.append(authed.call("GET", "/v1/transactions"))
    authed.close()
    client.close()
    assert [a[0] for a in answers] == [201, 409, 400, 401, 200, 200, 200]
    for _, body, _ in answers:
        text = json.dumps(body)
        assert secret not in text and "$2b$" not in text and '"password":' not in text, text

    make_user(stack.port, "secrets-second@example.com")
    hashes = stack.query("SELECT email, password FROM credentials")
    assert hashes and all(BCRYPT.match(h) for _, h in hashes), hashes
    for column in ("first_name", "middle_name", "last_name", "email", "phone"):
        rows = stack.query(
            f"SELECT COUNT(*) FROM users WHERE {column} IN (%s, %s)", (secret, PASSWORD)
        )
        assert rows[0][0] == 0, column
    assert (
        stack.query(
            "SELECT COUNT(*) FROM credentials WHERE password IN (%s, %s)", (secret, PASSWORD)
        )[0][0]
        == 0
    )

    logs = {p.name: p.read_text(errors="replace") for p in (stack.var / "log").glob("*.log")}
    assert "web_00.log" in logs and "app_00.log" in logs
    for name, text in logs.items():
        assert secret not in text and PASSWORD not in text, name
        assert not re.search(r"\$2[aby]\$\d\d\$", text), name
    raw = Raw(stack.port)
    status, answer, _ = raw.call("GET", "/v1/account", None, {"Cookie": f"token={secret}"})
    raw.close()
    assert status == 401 and secret.encode() not in answer
    COLLECTOR.add(
        SCENARIO,
        bcrypt_hashes_checked=len(hashes),
        log_files_scanned=len(logs),
        responses_scanned=len(answers) + 1,
    )
    shared.check(SCENARIO)
