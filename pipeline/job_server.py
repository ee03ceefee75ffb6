"""Local job servers (Prism, Flink's) started so that Ctrl-C stops the job, not them.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group, and Beam
starts its job servers in ours: Prism (Go) and the Flink job server (a JVM) died
on the spot, before the job could be cancelled and its counters read. Beam's
wrapper for them also replaces our SIGINT handler with one that fails (it calls a
method that takes no arguments). So the job server is started here, from Beam's
own command line for it, with SIGINT ignored (``sh``'s ``trap "" INT``, then
``exec``): Go and the JVM both keep a shutdown signal ignored that they were
started with, and our own handler is never touched. It stays in our group, so
whatever kills the group (a test's SIGKILL, a closed terminal's SIGHUP) still
takes it too, and it is stopped with SIGTERM when this process exits.

Example:
    runner = LocalPrismRunner()  # reads --prism_location
    beam.Pipeline(runner=runner, options=options).run()
"""

from __future__ import annotations

import atexit
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from typing import IO

import grpc
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    PortableOptions,
    PrismRunnerOptions,
)
from apache_beam.portability.api import beam_job_api_pb2_grpc
from apache_beam.runners.portability.flink_runner import FlinkJarJobServer, FlinkRunner
from apache_beam.runners.portability.job_server import (
    JobServer,
    StopOnExitJobServer,
    SubprocessJobServer,
)
from apache_beam.runners.portability.prism_runner import PrismJobServer, PrismRunner

from transforms.errors import WirenewsError

__all__ = [
    "LocalFlinkRunner",
    "LocalPrismRunner",
    "QuietPrismJobServer",
    "ShieldedJobServer",
    "stop_job_servers",
]

LOGGER = logging.getLogger(__name__)
# The job server's own lines, shown with Beam's logs (``wirenews -v``), as Beam showed them.
_SERVER_LOG = logging.getLogger("job_server")
_STOP_SECONDS = 10.0
# Prism gives up on its own this long after its last job ended.
_PRISM_IDLE_SHUTDOWN = "60s"
_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
# Runs the command with SIGINT ignored: ignored signals stay ignored across exec.
_IGNORING_SIGINT = ("sh", "-c", 'trap "" INT; exec "$@"', "sh")


_RUNNING: set[ShieldedJobServer] = set()


def stop_job_servers() -> None:
    """End every job server this process started and has not stopped yet."""
    for server in list(_RUNNING):
        server.stop()


class LocalPrismRunner(PrismRunner):
    """Beam's PrismRunner, its Prism started by :class:`ShieldedJobServer`."""

    def default_job_server(self, options: PipelineOptions) -> JobServer:
        """Prism from ``--prism_location`` (a path here: Beam would fetch a URL).

        Raises:
            WirenewsError: no ``--prism_location``.
        """
        if not options.view_as(PrismRunnerOptions).prism_location:
            message = "LocalPrismRunner needs --prism_location"
            raise WirenewsError(message)
        timeout = options.view_as(PortableOptions).job_server_timeout
        return ShieldedJobServer(QuietPrismJobServer(options), timeout)


class QuietPrismJobServer(PrismJobServer):
    """Prism without its web UI, and ending once idle.

    Beam passes ``--serve_http False``; Go's flag parser takes ``False`` for the
    first positional argument there and stops reading flags, so the UI was served
    (on a fixed port) and any flag after it was ignored.
    """

    def __init__(self, options: PipelineOptions, idle_shutdown: str = _PRISM_IDLE_SHUTDOWN) -> None:
        super().__init__(options)
        self._idle_shutdown = idle_shutdown

    def prism_arguments(self, job_port: int) -> list[str]:
        """Prism's flags, each with its value after ``=``."""
        return [
            f"--job_port={job_port}",
            "--serve_http=false",
            f"--idle_shutdown_timeout={self._idle_shutdown}",
        ]


class LocalFlinkRunner(FlinkRunner):
    """Beam's FlinkRunner, its local job server started by :class:`ShieldedJobServer`."""

    def default_job_server(self, options: PipelineOptions) -> JobServer:
        """The job server jar, as Beam would start it; a Flink uber-jar submission as it is."""
        server = super().default_job_server(options)
        if isinstance(server, StopOnExitJobServer):  # the local jar, not a remote submission
            timeout = options.view_as(PortableOptions).job_server_timeout
            return ShieldedJobServer(FlinkJarJobServer(options), timeout)
        return server


class ShieldedJobServer(JobServer):
    """A Beam job server process, started with SIGINT ignored, stopped (SIGTERM) at exit."""

    def __init__(self, server: SubprocessJobServer, timeout_seconds: float = 60) -> None:
        self._server = server
        self._timeout_seconds = timeout_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._temp_root: str | None = None
        self._last_lines: deque[str] = deque(maxlen=20)

    def start(self) -> beam_job_api_pb2_grpc.JobServiceStub:
        """Start the server with Beam's command line for it; wait until it answers.

        Raises:
            WirenewsError: the server could not start, exited, or did not answer in time.
        """
        atexit.register(self.stop)
        _RUNNING.add(self)
        try:
            # Where Beam's server puts its temporary files (Flink's artifacts), as Beam's
            # own start would set it; removed at stop.
            self._temp_root = tempfile.mkdtemp(prefix="beam-temp")
            self._server._local_temp_root = self._temp_root  # noqa: SLF001
            command, endpoint = self._server.subprocess_cmd_and_endpoint()
            command = [str(arg) for arg in command]
            self._process = subprocess.Popen(  # noqa: S603 - Beam's command line for its server
                [*_IGNORING_SIGINT, *command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except (OSError, ValueError, RuntimeError) as exc:
            self.stop()
            message = f"could not start the job server: {exc}"
            raise WirenewsError(message) from exc
        logging_thread = threading.Thread(
            target=self._log_lines, args=(self._process.stdout,), name="job-server", daemon=True
        )
        logging_thread.start()
        self._channel = grpc.insecure_channel(endpoint, options=_UNLIMITED)
        ready = grpc.channel_ready_future(self._channel)
        deadline = time.monotonic() + self._timeout_seconds
        while True:
            try:
                ready.result(timeout=0.5)
            except grpc.FutureTimeoutError:
                exited = self._process.poll()
                if exited is not None or time.monotonic() > deadline:
                    ready.cancel()
                    self.stop()
                    logging_thread.join(timeout=5)  # so that the message has its last words
                    happened = f"exited with {exited}" if exited is not None else "did not answer"
                    message = f"{command[0]} {happened}: " + " | ".join(self._last_lines)
                    raise WirenewsError(message) from None
            else:
                LOGGER.debug("%s is up at %s", command[0], endpoint)
                return beam_job_api_pb2_grpc.JobServiceStub(self._channel)

    def stop(self) -> None:
        """End the server, if it still runs: SIGTERM, then SIGKILL if it has not exited in 10 s."""
        _RUNNING.discard(self)
        process, self._process = self._process, None
        channel, self._channel = self._channel, None
        try:
            if channel is not None:
                channel.close()
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if process is not None and process.poll() is None:  # interrupted while waiting
                process.kill()
            if self._temp_root:
                shutil.rmtree(self._temp_root, ignore_errors=True)
                self._temp_root = None

    def _log_lines(self, stream: IO[bytes]) -> None:
        """The server's log, at info level on its own logger; its last lines go into errors."""
        with stream:
            for raw in stream:
                line = raw.decode(errors="backslashreplace").rstrip()
                self._last_lines.append(line)
                _SERVER_LOG.info(line)
