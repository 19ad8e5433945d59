"""`cluster.py start` restarts a joining Galera node that left the group instead of syncing
(a CI run once saw the third node fall into a non-primary view of itself alone and stay
there): here node 3 is sent out of the group by pointing it at an address where no node
listens, and the start's wait (scripts/cluster.py ``wait_synced`` with a ``JoinWatch``)
brings it back."""

from __future__ import annotations

import subprocess
import time

from tests.cluster.cluster import PY, Cluster
from tests.stack.helpers import ROOT

WAIT_FOR_NODE_3 = """
import cluster
cfg = cluster.ClusterConfig.from_env()
cluster.wait_synced(cfg, 3, 150, cluster.JoinWatch(rejoin_after=1.0))
"""


def test_a_node_that_left_the_group_is_restarted_and_syncs_again(cluster: Cluster) -> None:
    pid = cluster.pid_of("galera_3")
    cluster.query("SET GLOBAL wsrep_cluster_address = 'gcomm://127.0.0.1:1'", node=3)
    deadline = time.monotonic() + 60
    while cluster.node_state(3) != "Initialized":
        assert time.monotonic() < deadline, cluster.node_state(3)
        time.sleep(0.2)
    done = subprocess.run(
        [PY, "-c", WAIT_FOR_NODE_3],
        cwd=ROOT / "scripts",
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "galera_3 left the group while joining: restart 1" in done.stdout
    assert cluster.node_state(3) == "Synced"
    assert cluster.pid_of("galera_3") not in (None, pid)
    cluster.wait_synced()
