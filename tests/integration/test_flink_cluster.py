"""The same jobs on a Flink session cluster: its own JobManager and TaskManager, as any cluster.

``deploy/flink/local_cluster.py`` starts Flink's JobManager and a TaskManager (each its own
JVM), Beam's job server pointed at the JobManager's REST port, and Beam's Python SDK worker
pool; ``wirenews run`` submits with ``--runner=PortableRunner --environment_type=EXTERNAL``,
as deploy/flink/README.md tells users of a real cluster. Nothing runs in this process: the
SDK workers are the pool's, and the job must appear among the cluster's finished jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    WIRENEWS,
    read_avro,
    run_wirenews,
)
from tests.integration.chaos import committed, stop_as_a_terminal_would
from tests.integration.conftest import load_local_cluster
from tests.integration.test_cli_run import check_seeds_output
from tests.integration.test_flink import check_a_bounded_run, produce_stories_and_a_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """A running cluster and its state folder (logs, and room for the jobs' output)."""
    helper = load_local_cluster()
    state = tmp_path_factory.mktemp("flink-cluster")
    try:
        running = helper.start(state, timeout=180.0)
    except Exception as exc:
        pytest.fail(f"the local Flink cluster did not start: {exc}", pytrace=False)
    yield running, state
    helper.stop(state)


def finished_jobs(rest_url: str) -> int:
    with urllib.request.urlopen(f"{rest_url}/overview", timeout=10) as answer:  # noqa: S310
        return int(json.loads(answer.read())["jobs-finished"])


def test_seeds_on_a_flink_cluster_give_the_direct_runners_records(cluster, tmp_path: Path) -> None:
    running, state = cluster
    before = finished_jobs(running.rest_url)
    out = tmp_path / "out"
    done = run_wirenews(
        "run", "--source", "seeds/", "--output", str(out), *running.run_flags(), timeout=400
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check_seeds_output(done.stdout, out)
    assert finished_jobs(running.rest_url) == before + 1
    assert "Starting worker" in (state / "worker-pool.log").read_text()


@pytest.mark.kafka
def test_a_bounded_kafka_run_on_a_flink_cluster_reads_to_the_end_and_commits(
    cluster, kafka_bootstrap: str, topic: str, produce: Callable, create_topic: Callable
) -> None:
    running, state = cluster
    create_topic(topic, 2)
    check_a_bounded_run(kafka_bootstrap, topic, produce, state / "kafka-out", *running.run_flags())


@pytest.mark.kafka
def test_a_stream_on_a_flink_cluster_writes_commits_and_is_cancelled_there_when_stopped(
    cluster, kafka_bootstrap: str, topic: str, produce: Callable, create_topic: Callable
) -> None:
    """Beam's job server cancels its invocation, not the job on the cluster: --flink-rest does.

    The cluster's flags carry ``--flink-rest``, as a user's should.
    """
    running, state = cluster
    create_topic(topic, 2)
    fed = produce_stories_and_a_copy(produce, topic, "s", 4)
    out, log = state / "stream-out", state / "stream.log"
    with log.open("wb") as sink:
        stream = subprocess.Popen(
            [str(WIRENEWS), "run", "--source", f"kafka://{kafka_bootstrap}/{topic}",
             "--group", "s", "--output", str(out), "--window", "2", *running.run_flags(),
             "--checkpointing_interval=2000", "--finish_bundle_before_checkpointing"],
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            written = {a["id"] for a in read_avro(out, "articles")} if out.exists() else set()
            if written >= fed and committed(kafka_bootstrap, "s", topic, 2) == {0: 2, 1: 3}:
                break
            assert stream.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail(f"the stream wrote {sorted(written)} in 150 s:\n{log.read_text()[-3000:]}")
        assert running_jobs(running.rest_url) == 1
        text = stop_as_a_terminal_would(stream, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stream.pid, signal.SIGKILL)
        stream.wait(timeout=60)
    assert "cancelled Flink job" in text, text[-3000:]
    assert "CANCELLED: the runner reported no counters" in text, text[-3000:]
    assert {d["id"]: d["duplicate_of"] for d in read_avro(out, "duplicates")} == {"s-1-copy": "s-1"}
    deadline = time.monotonic() + 30
    while running_jobs(running.rest_url) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running_jobs(running.rest_url) == 0


def running_jobs(rest_url: str) -> int:
    with urllib.request.urlopen(f"{rest_url}/overview", timeout=10) as answer:  # noqa: S310
        return int(json.loads(answer.read())["jobs-running"])


def test_stopping_the_cluster_leaves_none_of_its_processes(tmp_path: Path) -> None:
    helper = load_local_cluster()
    state = tmp_path / "cluster"
    running = helper.start(state, timeout=180.0)
    assert helper.status(state) == running
    assert helper.start(state) == running  # a second start finds the running one
    pids = [int((state / f"{name}.pid").read_text()) for name in helper.SERVICES]
    assert helper.stop(state)
    assert helper.status(state) is None
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state_of(pid), pid
    assert not helper.stop(state)


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"
