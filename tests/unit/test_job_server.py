"""Starting and stopping job servers so that a terminal's Ctrl-C reaches the job, not them.

The whole path, with the real Prism and a real Ctrl-C, is
``tests/integration/test_kafka_streaming.py::test_ctrl_c_in_a_terminal_stops_the_stream_with_its_summary``;
with Flink's job server, ``tests/integration/test_flink.py``.
"""

import signal
import stat
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.job_server import SubprocessJobServer

from pipeline.job_server import LocalPrismRunner, ShieldedJobServer, _start_ignoring_sigint
from transforms.errors import WirenewsError


class _Command(SubprocessJobServer):
    """A job server whose command line is given, as Beam's servers give theirs."""

    def __init__(self, *command: str) -> None:
        super().__init__()
        self._command = list(command)

    def subprocess_cmd_and_endpoint(self) -> tuple[list[str], str]:
        self.temp_folder = self.local_temp_dir(prefix="artifacts")  # as Flink's server does
        return self._command, "localhost:1"


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


def test_a_server_that_exits_at_once_is_an_error_with_what_it_said(tmp_path: Path) -> None:
    binary = tmp_path / "server"
    binary.write_text('#!/bin/sh\necho "flag provided but not defined: $1"\nexit 2\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    beams = _Command(str(binary), "--job_port")
    server = ShieldedJobServer(beams, "--idle")
    said = "flag provided but not defined: --job_port"
    with pytest.raises(WirenewsError, match=f"exited with 2: {said}"):
        server.start()
    assert not Path(beams.temp_folder).exists(), "its temporary files were left behind"
    server.stop()  # stopping what has already stopped is fine


def test_the_extra_arguments_follow_beams_command_line(tmp_path: Path) -> None:
    binary = tmp_path / "server"
    binary.write_text('#!/bin/sh\necho "$@"\nexit 3\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    server = ShieldedJobServer(_Command(str(binary), "--job_port", "1"), "--idle", "60s")
    with pytest.raises(WirenewsError, match=r"exited with 3: --job_port 1 --idle 60s$"):
        server.start()


def test_prism_is_never_downloaded() -> None:
    with pytest.raises(WirenewsError, match="--prism_location"):
        LocalPrismRunner().default_job_server(PipelineOptions([]))
