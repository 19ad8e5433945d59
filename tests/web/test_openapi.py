"""docs/openapi.yaml stays true: the same routes and methods as the Klein app, resolvable
references, and the common error answers on every operation. (Every status code the web
tests observe is checked against it by the test client, see conftest.Client.)"""

from __future__ import annotations

import re
from typing import Any

from shillings_web.app import ShillingsApi
from tests.web.openapi import check_documented, operations, spec


def klein_routes() -> set[tuple[str, str]]:
    routes = set()
    for rule in ShillingsApi.app.url_map.iter_rules():
        for method in rule.methods or ():
            if method != "HEAD":
                routes.add((method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)))
    return routes


def test_spec_is_openapi_31():
    assert spec()["openapi"].startswith("3.1.")


def test_every_route_is_documented_and_every_documented_route_exists():
    assert klein_routes() == set(operations())


def test_common_answers_documented_on_every_operation():
    for (method, path), codes in operations().items():
        assert 500 in codes, (method, path)
        assert 503 in codes, (method, path)
        if method == "POST":
            assert 413 in codes, (method, path)
        assert any(200 <= c < 300 for c in codes), (method, path)


def test_authenticated_operations_document_401_and_security():
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if op.get("security"):
                assert "401" in op["responses"], (method, path)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves():
    document = spec()
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_checker_rejects_undocumented_answers():
    # The conftest client relies on this checker; make sure it can fail.
    check_documented("GET", "/v1/account?x=1", 200)
    check_documented("DELETE", "/v1/webhooks/some-id", 404)
    for args in (
        ("GET", "/v1/account", 418),
        ("PUT", "/v1/account", 404),
        ("GET", "/x", 200),
        ("DELETE", "/v1/webhooks/a/b", 200),
        ("GET", "/v1/webhooks/a/deliveries", 409),
    ):
        try:
            check_documented(*args)
        except AssertionError:
            continue
        raise AssertionError(f"{args} was accepted")
