"""Which Flink jobs ``cancel_on_cluster`` cancels, against a stand-in for Flink's REST API.

The stand-in answers the two requests the cancel makes (the jobs' overview and a
PATCH to cancel one) as Flink 1.19's REST API does. The real cluster is in
tests/integration/test_flink_cluster.py; here are the cases it cannot stage: jobs
of the same name from before the run, and a job that appears while the cancel waits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.flink import cancel_on_cluster, flink_jobs

NAME = "wirenews-0123456789ab"


@dataclass
class FakeFlink:
    """The jobs a stand-in cluster shows, and the ids it was asked to cancel."""

    jobs: dict[str, tuple[str, str]] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    url: str = ""
    overview: bytes | None = None  # what /jobs/overview answers instead, if set


@pytest.fixture
def flink() -> Iterator[FakeFlink]:
    cluster = FakeFlink()

    class RestApi(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            jobs = [{"jid": j, "name": n, "state": s} for j, (n, s) in cluster.jobs.items()]
            self._answer(cluster.overview or json.dumps({"jobs": jobs}).encode())

        def do_PATCH(self) -> None:
            jid, _, query = self.path.removeprefix("/jobs/").partition("?")
            assert query == "mode=cancel"
            cluster.cancelled.append(jid)
            cluster.jobs[jid] = (cluster.jobs[jid][0], "CANCELLING")
            self.send_response(202)
            self.end_headers()

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RestApi)
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    serving = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    try:
        yield cluster
    finally:
        server.shutdown()
        server.server_close()


def test_only_this_runs_job_is_cancelled(flink: FakeFlink) -> None:
    """Not a job of that name from before the run, another job, or one that has ended."""
    flink.jobs = {
        "earlier": (NAME, "RUNNING"),
        "ours": (NAME, "RUNNING"),
        "other": ("someone-elses", "RUNNING"),
        "done": (NAME, "FINISHED"),
    }
    assert cancel_on_cluster(flink.url, NAME, spare={"earlier"}, patience=0) == ["ours"]
    assert flink.cancelled == ["ours"]
    assert flink.jobs["earlier"] == (NAME, "RUNNING")


def test_a_job_still_being_submitted_is_waited_for(flink: FakeFlink) -> None:
    """A stream stopped while it started: its job shows up on the cluster a moment later."""
    threading.Timer(1.0, lambda: flink.jobs.update(late=(NAME, "CREATED"))).start()
    started = time.monotonic()
    assert cancel_on_cluster(flink.url, NAME, patience=10) == ["late"]
    assert time.monotonic() - started < 5
    assert flink.cancelled == ["late"]


def test_no_job_to_cancel_gives_up_after_its_patience(flink: FakeFlink) -> None:
    flink.jobs = {"earlier": (NAME, "RUNNING")}
    started = time.monotonic()
    assert cancel_on_cluster(flink.url, NAME, spare={"earlier"}, patience=1) == []
    assert time.monotonic() - started >= 1
    assert flink.cancelled == []


def test_what_is_not_flinks_rest_api_is_named(flink: FakeFlink) -> None:
    flink.overview = b'{"status": "ok"}'
    with pytest.raises(ValueError, match="is not Flink's REST API"):
        flink_jobs(flink.url)
