"""Regenerate the README's configuration tables from the settings classes:
``python -m shillings_proto.configdoc [README.md]`` (``make config-docs``); ``--check``
exits 1 when the README is stale. Each table sits between ``<!-- settings:NAME -->`` and
``<!-- /settings:NAME -->``; the stack's table can join with ``markdown_table`` rows."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable


def tables() -> dict[str, Callable[[], str]]:
    """The generated tables by marker name."""
    from shillings_app.config import AppConfig
    from shillings_app.hooks.config import HooksConfig
    from shillings_web.config import WebConfig

    return {"app": AppConfig.table, "hooks": HooksConfig.table, "web": WebConfig.table}


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""
    for name, table in tables().items():
        pattern = re.compile(
            rf"(<!-- settings:{name} -->\n).*?(<!-- /settings:{name} -->)", re.DOTALL
        )
        found = pattern.search(text)
        if found is None:
            raise ValueError(f"no <!-- settings:{name} --> block")
        text = text[: found.end(1)] + table() + text[found.start(2) :]
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    paths = [a for a in args if a != "--check"] or ["README.md"]
    stale = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text)
        if new != text:
            stale += 1
            if not check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
            print(f"{path}: {'stale' if check else 'regenerated'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
