"""scripts/cluster.py's rule for a joining Galera node that left the group instead of
syncing (make test-cluster runs the joins themselves), on explicit times."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.stack.helpers import ROOT


def _cluster_module() -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / "scripts" / "cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_script"] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def test_a_joiner_outside_the_group_is_restarted_after_the_grace_twice_at_most() -> None:
    watch = _cluster_module().JoinWatch(rejoin_after=15.0, max_rejoins=2)
    assert not watch.restart_due("down", 0.0)  # receiving its state transfer
    assert not watch.restart_due("Initialized", 1.0)
    assert not watch.restart_due("Initialized", 15.9)
    assert watch.restart_due("Initialized", 16.0)
    assert watch.rejoins == 1
    assert not watch.restart_due("Initialized", 17.0)  # the grace starts again
    assert watch.restart_due("Initialized", 32.0)
    assert not watch.restart_due("Initialized", 100.0)  # two restarts, then it is left
    assert watch.rejoins == 2


def test_the_grace_starts_again_when_the_node_comes_back_in_between() -> None:
    watch = _cluster_module().JoinWatch(rejoin_after=15.0)
    assert not watch.restart_due("Initialized", 0.0)
    assert not watch.restart_due("Joined", 10.0)
    assert not watch.restart_due("Initialized", 20.0)
    assert not watch.restart_due("Initialized", 34.0)
    assert watch.restart_due("Initialized", 35.0)
