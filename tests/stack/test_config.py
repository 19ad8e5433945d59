"""StackConfig documents every setting it reads: a variable, a default and a meaning."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from shillings_stack.config import StackConfig
from tests.stack.helpers import ROOT, clean_env


def test_every_field_names_the_variable_from_env_reads_and_the_readme_documents() -> None:
    source = inspect.getsource(StackConfig.from_env)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(StackConfig):
        doc = f.metadata
        assert set(doc) == {"env", "default", "meaning"} and all(doc.values()), f.name
        assert f'"{doc["env"]}"' in source, f"from_env does not read {doc['env']} ({f.name})"
        assert f"`{doc['env']}`" in readme, f"README does not document {doc['env']}"


def test_field_defaults_are_what_an_empty_environment_gives(tmp_path: Path) -> None:
    cfg = StackConfig.from_env(clean_env(SHILLINGS_VAR=str(tmp_path)))
    derived = {"var", "access_log"}  # from SHILLINGS_VAR; their documented defaults say so
    for f in dataclasses.fields(StackConfig):
        if f.name not in derived:
            assert getattr(cfg, f.name) == f.default, f.name
    assert cfg.access_log == str(tmp_path / "log" / "nginx-access.log")
