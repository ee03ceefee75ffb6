"""Starting and stopping Prism so that a terminal's Ctrl-C reaches the job, not Prism.

The whole path, with the real Prism and a real Ctrl-C, is
``tests/integration/test_kafka_streaming.py::test_ctrl_c_in_a_terminal_stops_the_stream_with_its_summary``.
"""

import signal
import stat
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.prism import LocalPrismRunner, PrismJobServer, _start_ignoring_sigint
from transforms.errors import WirenewsError


def _ignored_signals(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    [mask] = [line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")]
    return int(mask, 16)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_ignores_sigint_and_this_process_keeps_its_handler() -> None:
    def ours(*_: object) -> None: ...

    previous = signal.signal(signal.SIGINT, ours)
    try:
        with _start_ignoring_sigint(["sleep", "30"]) as child:
            try:
                assert _ignored_signals(child.pid) & (1 << (signal.SIGINT - 1))
                assert not _ignored_signals(child.pid) & (1 << (signal.SIGTERM - 1))
            finally:
                child.kill()
        assert signal.getsignal(signal.SIGINT) is ours
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_prism_that_exits_at_once_is_an_error_with_what_it_said(tmp_path: Path) -> None:
    binary = tmp_path / "prism"
    binary.write_text('#!/bin/sh\necho "flag provided but not defined: $1"\nexit 2\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    server = PrismJobServer(str(binary))
    with pytest.raises(
        WirenewsError, match=r"exited with 2: flag provided but not defined: --job_port"
    ):
        server.start()
    server.stop()  # stopping what has already stopped is fine


def test_the_runner_needs_a_binary() -> None:
    with pytest.raises(WirenewsError, match="--prism_location"):
        LocalPrismRunner().default_job_server(PipelineOptions([]))
