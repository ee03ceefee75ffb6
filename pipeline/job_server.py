"""Local job servers (Prism, Flink's) started so that Ctrl-C stops the job, not them.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group, and Beam
starts its job servers in ours: Prism (Go) and the Flink job server (a JVM) died
on the spot, before the job could be cancelled and its counters read. Beam's
wrapper for them also replaces our SIGINT handler with one that fails (it calls a
method that takes no arguments). So the job server is started here, from Beam's
own command line for it, with SIGINT ignored: Go and the JVM both keep a shutdown
signal ignored that they were started with. It stays in our group, so whatever
kills the group (a test's SIGKILL, a closed terminal's SIGHUP) still takes it too,
and it is stopped with SIGTERM when this process exits.

Example:
    runner = LocalPrismRunner()  # reads --prism_location
    beam.Pipeline(runner=runner, options=options).run()
"""

from __future__ import annotations

import atexit
import logging
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from typing import IO

import grpc
from apache_beam.options.pipeline_options import PipelineOptions, PrismRunnerOptions
from apache_beam.portability.api import beam_job_api_pb2_grpc
from apache_beam.runners.portability.flink_runner import FlinkJarJobServer, FlinkRunner
from apache_beam.runners.portability.job_server import (
    JobServer,
    StopOnExitJobServer,
    SubprocessJobServer,
)
from apache_beam.runners.portability.prism_runner import PrismJobServer, PrismRunner

from transforms.errors import WirenewsError

__all__ = ["LocalFlinkRunner", "LocalPrismRunner", "ShieldedJobServer"]

LOGGER = logging.getLogger(__name__)
# The job server's own lines, shown with Beam's logs (``wirenews -v``), as Beam showed them.
_SERVER_LOG = logging.getLogger("job_server")
_START_SECONDS = 60.0
_STOP_SECONDS = 10.0
# Prism gives up on its own this long after its last job ended.
_PRISM_IDLE_SHUTDOWN = ("--idle_shutdown_timeout", "60s")
_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


class LocalPrismRunner(PrismRunner):
    """Beam's PrismRunner, its Prism started by :class:`ShieldedJobServer`."""

    def default_job_server(self, options: PipelineOptions) -> JobServer:
        """Prism from ``--prism_location``, as Beam would start it (never downloaded).

        Raises:
            WirenewsError: no ``--prism_location``.
        """
        if not options.view_as(PrismRunnerOptions).prism_location:
            message = "LocalPrismRunner needs --prism_location"
            raise WirenewsError(message)
        return ShieldedJobServer(PrismJobServer(options), *_PRISM_IDLE_SHUTDOWN)


class LocalFlinkRunner(FlinkRunner):
    """Beam's FlinkRunner, its local job server started by :class:`ShieldedJobServer`."""

    def default_job_server(self, options: PipelineOptions) -> JobServer:
        """The job server jar, as Beam would start it; a Flink uber-jar submission as it is."""
        server = super().default_job_server(options)
        if isinstance(server, StopOnExitJobServer):  # the local jar, not a remote submission
            return ShieldedJobServer(FlinkJarJobServer(options))
        return server


class ShieldedJobServer(JobServer):
    """A Beam job server process, started with SIGINT ignored, stopped (SIGTERM) at exit."""

    def __init__(self, server: SubprocessJobServer, *extra_args: str) -> None:
        self._server = server
        self._extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._temp_root: str | None = None
        self._last_lines: deque[str] = deque(maxlen=20)

    def start(self) -> beam_job_api_pb2_grpc.JobServiceStub:
        """Start the server with Beam's command line for it; wait until it answers.

        Raises:
            WirenewsError: the server exited, or did not answer within a minute.
        """
        # Where Beam's server puts its temporary files (Flink's artifacts), removed at stop,
        # as Beam's own start would set it.
        self._temp_root = self._server._local_temp_root = tempfile.mkdtemp(prefix="beam-temp")  # noqa: SLF001
        command, endpoint = self._server.subprocess_cmd_and_endpoint()
        command = [str(arg) for arg in (*command, *self._extra_args)]
        process = self._process = _start_ignoring_sigint(command)
        atexit.register(self.stop)
        logging_thread = threading.Thread(
            target=self._log_lines, args=(process.stdout,), name="job-server-log", daemon=True
        )
        logging_thread.start()
        channel = grpc.insecure_channel(endpoint, options=_UNLIMITED)
        deadline = time.monotonic() + _START_SECONDS
        while True:
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
            except grpc.FutureTimeoutError:
                exited = process.poll()
                if exited is not None or time.monotonic() > deadline:
                    channel.close()
                    self.stop()
                    logging_thread.join(timeout=5)  # so that the message has its last words
                    happened = f"exited with {exited}" if exited is not None else "did not answer"
                    message = f"{command[0]} {happened}: " + " | ".join(self._last_lines)
                    raise WirenewsError(message) from None
            else:
                LOGGER.debug("%s is up at %s (pid %d)", command[0], endpoint, process.pid)
                return beam_job_api_pb2_grpc.JobServiceStub(channel)

    def stop(self) -> None:
        """End the server, if it still runs: SIGTERM, then SIGKILL if it has not exited in 10 s."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
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


def _start_ignoring_sigint(command: list[str]) -> subprocess.Popen[bytes]:
    """Start ``command`` with SIGINT ignored, which the child keeps across exec.

    Only the main thread may change a handler; elsewhere the child gets the default.
    A SIGINT during the few microseconds of the start is ignored by this process too.
    """
    if threading.current_thread() is not threading.main_thread():
        return _popen(command)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return _popen(command)
    finally:
        signal.signal(signal.SIGINT, previous)


def _popen(command: list[str]) -> subprocess.Popen[bytes]:
    # Beam's command line for its job server: a binary and flags of Beam's and ours.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
