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
from apache_beam.utils.subprocess_server import pick_port

from pipeline.job_server import (
    LocalFlinkRunner,
    LocalPrismRunner,
    QuietPrismJobServer,
    ShieldedJobServer,
)
from transforms.errors import WirenewsError


class _Command(SubprocessJobServer):
    """A job server whose command line is given, as Beam's servers give theirs."""

    def __init__(self, *command: str) -> None:
        super().__init__()
        self._command = list(command)

    def subprocess_cmd_and_endpoint(self) -> tuple[list[str], str]:
        self.temp_folder = self.local_temp_dir(prefix="artifacts")  # as Flink's server does
        return self._command, "localhost:1"


def test_a_server_that_exits_at_once_is_an_error_with_what_it_said(tmp_path: Path) -> None:
    binary = tmp_path / "server"
    binary.write_text('#!/bin/sh\necho "flag provided but not defined: $1"\nexit 2\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    beams = _Command(str(binary), "--job_port")
    server = ShieldedJobServer(beams)
    said = "flag provided but not defined: --job_port"
    with pytest.raises(WirenewsError, match=f"exited with 2: {said}"):
        server.start()
    assert not Path(beams.temp_folder).exists(), "its temporary files were left behind"
    server.stop()  # stopping what has already stopped is fine


def test_a_server_that_cannot_start_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    beams = _Command(str(tmp_path / "no-such-server"))
    with pytest.raises(WirenewsError, match=r"exited with 127: .*no-such-server"):
        ShieldedJobServer(beams).start()
    assert not Path(beams.temp_folder).exists()


def test_the_server_starts_with_sigint_ignored_and_sigterm_not(tmp_path: Path) -> None:
    """What it reports of itself: ``SigIgn`` in /proc, a bit per signal (SIGINT is bit 1)."""
    binary = tmp_path / "server"
    binary.write_text("#!/bin/sh\ngrep SigIgn /proc/$$/status\nexit 1\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(WirenewsError) as raised:
        ShieldedJobServer(_Command(str(binary))).start()
    mask = int(str(raised.value).rsplit("SigIgn:", 1)[1].split()[0], 16)
    assert mask & (1 << (signal.SIGINT - 1))
    assert not mask & (1 << (signal.SIGTERM - 1))


def test_prism_flags_are_read_whole() -> None:
    """``--flag value`` with a boolean stops Go's flag parsing; ``--flag=value`` never does."""
    options = PipelineOptions(["--prism_location=/bin/true"])
    arguments = QuietPrismJobServer(options, idle_shutdown="5s").prism_arguments(1234)
    assert arguments == ["--job_port=1234", "--serve_http=false", "--idle_shutdown_timeout=5s"]


def test_prism_is_never_downloaded() -> None:
    with pytest.raises(WirenewsError, match="--prism_location"):
        LocalPrismRunner().default_job_server(PipelineOptions([]))


def _grpc_server_script(tmp_path: Path, *, on_sigterm: str) -> tuple[Path, int]:
    """A stand-in job server: any gRPC server on the port makes the channel ready."""
    (port,) = pick_port(None)
    script = tmp_path / "server.py"
    script.write_text(
        "import signal, sys, time\n"
        "from concurrent import futures\n"
        "import grpc\n"
        f"signal.signal(signal.SIGTERM, {on_sigterm})\n"
        "server = grpc.server(futures.ThreadPoolExecutor(1))\n"
        f"server.add_insecure_port('localhost:{port}')\n"
        "server.start()\n"
        "print('serving', flush=True)\n"
        "time.sleep(120)\n"
    )
    return script, port


class _Python(_Command):
    def __init__(self, script: Path, port: int) -> None:
        super().__init__(sys.executable, str(script))
        self._port = port

    def subprocess_cmd_and_endpoint(self) -> tuple[list[str], str]:
        command, _ = super().subprocess_cmd_and_endpoint()
        return command, f"localhost:{self._port}"


def test_a_server_that_answers_is_up_until_stopped_then_gone_with_its_files(
    tmp_path: Path,
) -> None:
    script, port = _grpc_server_script(tmp_path, on_sigterm="lambda *_: sys.exit(0)")
    beams = _Python(script, port)
    server = ShieldedJobServer(beams, timeout_seconds=30)
    server.start()
    process = server._process
    assert process is not None
    assert process.poll() is None
    assert Path(beams.temp_folder).exists()
    server.stop()
    assert process.returncode == 0, "it ended by its SIGTERM"
    assert not Path(beams.temp_folder).exists()


def test_a_server_deaf_to_sigterm_is_killed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("pipeline.job_server._STOP_SECONDS", 0.5)
    script, port = _grpc_server_script(tmp_path, on_sigterm="signal.SIG_IGN")
    server = ShieldedJobServer(_Python(script, port), timeout_seconds=30)
    server.start()
    process = server._process
    assert process is not None
    server.stop()
    assert process.returncode == -signal.SIGKILL


def test_flink_on_a_cluster_with_an_uber_jar_keeps_beams_own_submission() -> None:
    options = PipelineOptions(
        ["--flink_master=localhost:8081", "--flink_submit_uber_jar", "--streaming"]
    )
    assert not isinstance(LocalFlinkRunner().default_job_server(options), ShieldedJobServer)
    local = PipelineOptions(["--flink_master=[local]", "--flink_job_server_jar=/no/such.jar"])
    assert isinstance(LocalFlinkRunner().default_job_server(local), ShieldedJobServer)
