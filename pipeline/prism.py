"""Prism as a streaming job's runner, started so that Ctrl-C stops the job, not Prism.

A terminal's Ctrl-C sends SIGINT to its whole foreground process group, and Beam
starts Prism in ours: Prism (a Go program with no handler) died on the spot,
before the job could be cancelled and its counters read. Beam's own wrapper
also replaces our SIGINT handler with one that fails (it calls a method that
takes no arguments). So Prism is started here, with SIGINT ignored: Go keeps a
signal ignored that it was started with. Prism stays in our group, so whatever
kills the group (a test's SIGKILL, a closed terminal's SIGHUP) still takes it
too, and it is stopped with SIGTERM once the job is over.

Example:
    runner = LocalPrismRunner()  # reads --prism_location
    beam.Pipeline(runner=runner, options=options).run()
"""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO

import grpc
from apache_beam.options.pipeline_options import PipelineOptions, PrismRunnerOptions
from apache_beam.portability.api import beam_job_api_pb2_grpc
from apache_beam.runners.portability.job_server import JobServer
from apache_beam.runners.portability.prism_runner import PrismRunner
from apache_beam.utils.subprocess_server import pick_port

from transforms.errors import WirenewsError

__all__ = ["LocalPrismRunner", "PrismJobServer"]

LOGGER = logging.getLogger(__name__)
# Prism's own lines, shown with Beam's logs (``wirenews -v``), as Beam showed them.
_PRISM_LOG = logging.getLogger("prism")
_START_SECONDS = 60.0
_STOP_SECONDS = 10.0
# Prism gives up on its own this long after its last job ended: a job whose process
# was killed outright leaves no Prism behind for long.
_IDLE_SHUTDOWN = "60s"
_UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


class LocalPrismRunner(PrismRunner):
    """Beam's PrismRunner, on a Prism binary started by :class:`PrismJobServer`."""

    def default_job_server(self, options: PipelineOptions) -> JobServer:
        """Prism from ``--prism_location``, which must name a binary on this machine."""
        binary = options.view_as(PrismRunnerOptions).prism_location
        if not binary:
            message = "LocalPrismRunner needs --prism_location"
            raise WirenewsError(message)
        return PrismJobServer(binary)


class PrismJobServer(JobServer):
    """One Prism process: started on a free port, stopped (SIGTERM) at ``stop`` or exit."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._last_lines: deque[str] = deque(maxlen=20)

    def start(self) -> beam_job_api_pb2_grpc.JobServiceStub:
        """Start Prism and wait until its job service answers.

        Raises:
            WirenewsError: Prism exited, or did not answer within a minute.
        """
        (port,) = pick_port(None)
        command = [self._binary, "--job_port", str(port), "--serve_http", "false",
                   "--idle_shutdown_timeout", _IDLE_SHUTDOWN]  # fmt: skip
        process = self._process = _start_ignoring_sigint(command)
        atexit.register(self.stop)
        logging_thread = threading.Thread(
            target=self._log_lines, args=(process.stdout,), name="prism-log", daemon=True
        )
        logging_thread.start()
        channel = grpc.insecure_channel(f"localhost:{port}", options=_UNLIMITED)
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
                    message = f"Prism ({self._binary}) {happened}: " + " | ".join(self._last_lines)
                    raise WirenewsError(message) from None
            else:
                LOGGER.debug("Prism is up on port %d (pid %d)", port, process.pid)
                return beam_job_api_pb2_grpc.JobServiceStub(channel)

    def stop(self) -> None:
        """End Prism, if it still runs: SIGTERM, then SIGKILL if it has not exited in 10 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_lines(self, stream: IO[bytes]) -> None:
        """Prism's log, at info level on its own logger; its last lines go into errors."""
        with stream:
            for raw in stream:
                line = raw.decode(errors="backslashreplace").rstrip()
                self._last_lines.append(line)
                _PRISM_LOG.info(line)


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
    # The binary is the user's --prism_location or ours; the arguments are our own.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
