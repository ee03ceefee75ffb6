"""The real Prism, started as a streaming job starts it: it ignores Ctrl-C, ends when stopped,
and ends by itself once idle (so its flags were read)."""

import os
import signal
import time

import grpc
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_job_api_pb2

from pipeline.job_server import QuietPrismJobServer, ShieldedJobServer
from pipeline.runner import find_prism


def _started(idle_shutdown: str = "60s") -> tuple[ShieldedJobServer, object]:
    prism = find_prism()
    assert prism, "Prism is not built: `make test` builds it (make prism)"
    options = PipelineOptions([f"--prism_location={prism}"])
    server = ShieldedJobServer(QuietPrismJobServer(options, idle_shutdown=idle_shutdown))
    return server, server.start()


def test_prism_ignores_sigint_and_ends_when_stopped() -> None:
    server, stub = _started()
    process = server._process
    assert process is not None
    try:
        os.kill(process.pid, signal.SIGINT)
        time.sleep(1)
        assert process.poll() is None, "Prism died of a SIGINT"
        stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=5)  # still answers
    finally:
        server.stop()
    assert process.returncode is not None


def test_prism_ends_by_itself_once_idle() -> None:
    server, stub = _started(idle_shutdown="1s")
    process = server._process
    assert process is not None
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is not None, "Prism ignored --idle_shutdown_timeout"
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetJobs(beam_job_api_pb2.GetJobsRequest(), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
