"""Baseline (b): a bare Klein process answering a constant JSON envelope on a unix socket.

python bench/klein_const.py /path/to/socket
"""

from __future__ import annotations

import sys
from typing import Any

from klein import Klein
from twisted.internet import endpoints, reactor
from twisted.web import server

BODY = b'{"status":{"code":200,"message":"OK"}}'

app = Klein()


@app.route("/", branch=True)
def constant(request: Any) -> bytes:
    request.setHeader(b"Content-Type", b"application/json")
    return BODY


class QuietSite(server.Site):
    """No access log: the baseline measures Klein and Twisted, nothing else."""

    def log(self, request: Any) -> None:
        pass


def main() -> None:
    site = QuietSite(app.resource())  # type: ignore[arg-type]
    site.noisy = False
    endpoint = endpoints.serverFromString(reactor, f"unix:{sys.argv[1]}:mode=600")
    endpoint.listen(site)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
