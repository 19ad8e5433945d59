"""shillings_proto.logfile: where web and app processes write their log."""

from __future__ import annotations

import sys
from pathlib import Path

from shillings_proto import logfile


def test_no_path_is_stdout() -> None:
    assert logfile.log_stream(None) is sys.stdout
    assert logfile.log_stream("") is sys.stdout


def test_a_path_is_appended_to_and_rotated_by_size(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "web_00.log"
    path.write_text("earlier line\n")
    monkeypatch.setattr(logfile, "ROTATE_BYTES", 40)
    stream = logfile.log_stream(str(path))
    stream.write("a request line\n")
    stream.flush()
    assert path.read_text() == "earlier line\na request line\n"
    stream.write("x" * 30 + "\n")
    stream.write("next line\n")  # the file had passed 40 bytes: rotated before this line
    stream.flush()
    rotated = (tmp_path / "web_00.log.1").read_text()
    assert rotated == "earlier line\na request line\n" + "x" * 30 + "\n"
    assert path.read_text() == "next line\n"
