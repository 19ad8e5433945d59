"""The committed generated protobuf code matches proto/shillings.proto."""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_generated_code_is_fresh():
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{ROOT}/proto",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"{ROOT}/proto/shillings.proto",
            ],
            check=True,
        )
        for name in ("shillings_pb2.py", "shillings_pb2.pyi"):
            with open(os.path.join(out, name), "rb") as f:
                fresh = f.read()
            with open(os.path.join(ROOT, "shillings_proto", name), "rb") as f:
                committed = f.read()
            assert committed == fresh, f"shillings_proto/{name} is stale: run `make proto`"
