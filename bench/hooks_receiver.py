"""The webhook receiver of the delivery bench, a process of its own (Klein): it verifies each
delivery with ``standardwebhooks`` (as a real receiver would) and appends
``<webhook-id> <arrival unix time> <event created_at>`` to ``--out``, one line per delivery.

    python -m bench.hooks_receiver --port N --secrets secrets.json --out arrivals.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from klein import Klein
from standardwebhooks import Webhook, WebhookVerificationError
from twisted.internet import reactor
from twisted.web.server import Site


def serve(port: int, secrets: dict[str, str], out: Any) -> None:
    app = Klein()
    verifiers = {webhook_id: Webhook(secret) for webhook_id, secret in secrets.items()}

    @app.route("/hook/<webhook_id>", methods=["POST"])
    def hook(request: Any, webhook_id: str) -> bytes:
        body = request.content.read()
        headers = {
            k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()
        }
        try:
            event = verifiers[webhook_id].verify(body, headers)
        except (KeyError, WebhookVerificationError):
            request.setResponseCode(400)
            out.write(f"BAD {webhook_id}\n")
            return b""
        out.write(f"{headers['webhook-id']} {time.time():.6f} {event['created_at']}\n")
        return b""

    site = Site(app.resource())
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log
    reactor.listenTCP(port, site, interface="127.0.0.1")  # type: ignore[attr-defined,arg-type]
    reactor.run()  # type: ignore[attr-defined]


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hooks_receiver")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secrets", required=True, help="JSON {webhook_id: secret}")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    with open(args.secrets, encoding="utf-8") as f:
        secrets = json.load(f)
    with open(args.out, "a", encoding="utf-8", buffering=1) as out:
        serve(args.port, secrets, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
