"""docs/openapi.yaml as the tests read it: which (method, path, status) it documents."""

from __future__ import annotations

import functools
import pathlib
import re
from typing import Any

import yaml

SPEC_PATH = pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def spec() -> dict[str, Any]:
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations() -> dict[tuple[str, str], set[int]]:
    """(METHOD, path) -> documented status codes."""
    result = {}
    for path, item in spec()["paths"].items():
        for method in METHODS:
            if method in item:
                codes = {int(code) for code in item[method]["responses"]}
                result[(method.upper(), path)] = codes
    return result


def documented_path(path: str) -> str:
    """The documented path ``path`` matches: itself, or a template such as
    ``/v1/webhooks/{webhook_id}`` whose parameters each match one non-empty segment."""
    for template in spec()["paths"]:
        pattern = re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template))
        if "{" in template and re.fullmatch(pattern, path):
            return template
    return path


def check_documented(method: str, path: str, code: int) -> None:
    """Fail unless ``code`` for ``method path`` is what docs/openapi.yaml promises.

    Documented operation: one of its response codes. Known path, other method: 405
    (HEAD answers as GET). Unknown path: 404.
    """
    path = documented_path(path.split("?", 1)[0])
    ops = operations()
    method = method.upper()
    if method == "HEAD" and ("GET", path) in ops:
        method = "GET"
    if (method, path) in ops:
        assert code in ops[(method, path)], f"{method} {path} -> {code} not in docs/openapi.yaml"
    elif any(p == path for _, p in ops):
        assert code == 405, f"{method} {path} -> {code}; undocumented method must be 405"
    else:
        assert code == 404, f"{method} {path} -> {code}; unknown path must be 404"
