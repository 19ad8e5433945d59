"""Scraping a process's metrics endpoint in tests: ``await scrape(port)``."""

from __future__ import annotations

from collections.abc import Mapping

import treq
from prometheus_client.parser import text_string_to_metric_families


class Samples:
    """The samples of one scrape, looked up by sample name and labels."""

    def __init__(self, text: str) -> None:
        self._values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self._values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def __call__(self, name: str, labels: Mapping[str, str] | None = None, **more: str) -> float:
        """The sample's value; KeyError when the process does not export it."""
        return self._values[(name, frozenset({**(labels or {}), **more}.items()))]


async def scrape(port: int, path: str = "/metrics") -> Samples:
    response = await treq.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/plain")
    return Samples((await response.content()).decode())
