#!/usr/bin/env python3
r"""A Flink session cluster on this machine: the cluster set-up of this folder's README, locally.

Four processes, each in its own session, run from one state folder:

- Flink's JobManager (``StandaloneSessionClusterEntrypoint``) and its REST port;
- one TaskManager (``TaskManagerRunner``, two slots), its memory worked out by Flink's
  own ``BashJavaUtils``, as Flink's ``bin/taskmanager.sh`` does;
- Beam's Flink job server, pointed at the JobManager (``--flink-master``), as next to
  any cluster;
- Beam's Python SDK worker pool, what the Kubernetes sidecar runs, from this virtualenv.
  Beam binds it to every interface (``[::]``, not a choice it offers), and it starts
  workers on request: on a shared network, firewall its port or stop the cluster after use.

Flink's distribution is not on Maven Central, but its runtime is: the job server's
classpath, which ``pipeline/flink.py`` caches (``make flink``), holds all of it, so the
cluster runs from those jars. Jobs go to it as to any cluster, with the flags ``start``
prints::

    wirenews run --source seeds/ --output out/ --runner=PortableRunner \
        --job_endpoint=127.0.0.1:J --environment_type=EXTERNAL --environment_config=127.0.0.1:P \
        --flink-rest=http://127.0.0.1:R

Usage (the flags are the last line of stdout)::

    .venv/bin/python deploy/flink/local_cluster.py start [--dir DIR]
    .venv/bin/python deploy/flink/local_cluster.py status [--dir DIR]
    .venv/bin/python deploy/flink/local_cluster.py stop [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The helpers' shared process code sits beside their folders (deploy/ is no package);
# the job server's jars come from the project's own cache.
for folder in (HERE.parent, REPO_ROOT):
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
from local_process import (  # noqa: E402
    HOST,
    LocalServiceError,
    free_port,
    kill_now,
    locked,
    pid_from_file,
    spawn,
    terminate,
    wait_ready,
)

from pipeline.flink import JAVA_17_FLAGS, ensure_job_server_jar  # noqa: E402
from transforms.errors import WirenewsError  # noqa: E402

__all__ = ["DEFAULT_STATE_DIR", "LocalCluster", "LocalClusterError", "start", "status", "stop"]

log = logging.getLogger("wirenews.local_cluster")

DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "flink"
# Started in this order, stopped in the reverse one.
SERVICES = ("jobmanager", "taskmanager", "job-server", "worker-pool")
_JOBMANAGER = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
_TASKMANAGER = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
_MEMORY_TOOL = "org.apache.flink.runtime.util.bash.BashJavaUtils"
_TOOL_RESULT = "BASH_JAVA_UTILS_EXEC_RESULT:"
# Marks each process's command line so stop()/status() only signal this folder's own.
_DIR_PROPERTY = "wirenews.flink.dir"


class LocalClusterError(LocalServiceError):
    """The local Flink cluster could not be started or stopped."""


@dataclass(frozen=True)
class LocalCluster:
    """Where a running local cluster answers."""

    rest_url: str
    job_endpoint: str
    worker_pool: str

    def run_flags(self) -> list[str]:
        """The ``wirenews run`` flags that submit a job to this cluster (and cancel a stream)."""
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.worker_pool}",
            f"--flink-rest={self.rest_url}",
        ]


def start(state_dir: Path = DEFAULT_STATE_DIR, timeout: float = 180.0) -> LocalCluster:
    """Start the four processes (or find them running) and return where they answer.

    Raises:
        LocalClusterError: a process did not start, or a part of the cluster is missing.
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with locked(state_dir / ".lock"):
        running = status(state_dir)
        if running is not None:
            return running
        _stop_all(state_dir)  # whatever is left of a half-started cluster
        jar = ensure_job_server_jar()
        classpath = f"{jar.parent / 'lib'}/*"
        rest, rpc, job, artifact, expansion, pool = _free_ports(6)
        cluster = LocalCluster(
            rest_url=f"http://{HOST}:{rest}",
            job_endpoint=f"{HOST}:{job}",
            worker_pool=f"{HOST}:{pool}",
        )
        conf = _write_config(state_dir, rest=rest, rpc=rpc)
        java = ["java", *JAVA_17_FLAGS, f"-D{_mark(state_dir)}"]
        try:
            _start(state_dir, "jobmanager",
                   [*java, "-Xmx512m", "-cp", classpath, _JOBMANAGER, "--configDir", str(conf)],
                   ready=lambda: _rest_answers(cluster.rest_url), timeout=timeout)  # fmt: skip
            jvm, dynamic = _taskmanager_resources(classpath, conf)
            _start(state_dir, "taskmanager",
                   [*java, *jvm, "-cp", classpath, _TASKMANAGER, "--configDir", str(conf),
                    *dynamic],
                   ready=lambda: _slots(cluster.rest_url) > 0, timeout=timeout)  # fmt: skip
            _start(state_dir, "job-server",
                   [*java, "-jar", str(jar), f"--flink-master={HOST}:{rest}", f"--job-host={HOST}",
                    f"--job-port={job}", f"--artifact-port={artifact}",
                    f"--expansion-port={expansion}", f"--artifacts-dir={state_dir / 'artifacts'}"],
                   ready=lambda: _listening(job), timeout=timeout)  # fmt: skip
            _start(state_dir, "worker-pool",
                   [sys.executable, "-X", _mark(state_dir), "-m",
                    "apache_beam.runners.worker.worker_pool_main", f"--service_port={pool}"],
                   ready=lambda: _listening(pool), timeout=timeout, env=_worker_env())  # fmt: skip
        except BaseException:
            _stop_all(state_dir, at_once=True)
            raise
        (state_dir / "cluster.json").write_text(json.dumps(asdict(cluster)) + "\n")
        return cluster


def status(state_dir: Path = DEFAULT_STATE_DIR) -> LocalCluster | None:
    """The running cluster of this folder, if all four processes run and Flink has slots."""
    state_dir = Path(state_dir).resolve()
    try:
        cluster = LocalCluster(**json.loads((state_dir / "cluster.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if any(_pid(state_dir, name) is None for name in SERVICES):
        return None
    return cluster if _slots(cluster.rest_url) > 0 else None


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop this folder's cluster; True if any part of it was running."""
    state_dir = Path(state_dir).resolve()
    with locked(state_dir / ".lock") if state_dir.exists() else contextlib.nullcontext():
        return _stop_all(state_dir)


def _stop_all(state_dir: Path, *, at_once: bool = False) -> bool:
    stopped = False
    for name in reversed(SERVICES):
        pid = _pid(state_dir, name)
        if pid is not None:
            stopped = True
            if at_once:
                kill_now(pid)
            else:
                terminate(pid, f"Flink {name}", LocalClusterError)
        (state_dir / f"{name}.pid").unlink(missing_ok=True)
    (state_dir / "cluster.json").unlink(missing_ok=True)
    return stopped


def _start(
    state_dir: Path,
    name: str,
    command: list[str],
    *,
    ready: Callable[[], bool],
    timeout: float,
    env: dict[str, str] | None = None,
) -> None:
    log.info("starting the %s (log: %s)", name, state_dir / f"{name}.log")
    started = time.monotonic()
    child = spawn(command, state_dir, f"{name}.log", env=env)
    (state_dir / f"{name}.pid").write_text(f"{child.pid}\n")
    wait_ready(
        child.pid,
        lambda _seconds: ready(),
        timeout=timeout,
        what=f"Flink {name}",
        log_path=state_dir / f"{name}.log",
        error=LocalClusterError,
    )
    log.info("%s ready in %.1f s", name, time.monotonic() - started)


def _write_config(state_dir: Path, *, rest: int, rpc: int) -> Path:
    """Flink's configuration: everything on loopback, small memory, two slots."""
    conf = state_dir / "conf"
    conf.mkdir(exist_ok=True)
    settings = {
        "jobmanager.rpc.address": HOST,
        "jobmanager.rpc.port": rpc,
        "jobmanager.bind-host": HOST,
        "rest.address": HOST,
        "rest.bind-address": HOST,
        "rest.port": rest,
        "taskmanager.host": HOST,
        "taskmanager.bind-host": HOST,
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.memory.process.size": "1728m",
        # Beam's batch translation opens many channels at once; Flink's default fraction
        # of a 1.7 GB TaskManager (~128 MB of buffers) fails its first shuffle.
        "taskmanager.memory.network.min": "256m",
        "taskmanager.memory.network.max": "256m",
        "taskmanager.numberOfTaskSlots": 2,
        "parallelism.default": 1,
        "io.tmp.dirs": str(state_dir / "tmp"),
    }
    (state_dir / "tmp").mkdir(exist_ok=True)
    lines = [f"{key}: {value}" for key, value in settings.items()]
    (conf / "flink-conf.yaml").write_text("\n".join(lines) + "\n")
    return conf


def _taskmanager_resources(classpath: str, conf: Path) -> tuple[list[str], list[str]]:
    """The TaskManager's JVM flags and ``-D`` memory settings, as bin/taskmanager.sh gets them."""
    command = ["java", "-cp", classpath, _MEMORY_TOOL, "GET_TM_RESOURCE_PARAMS", "--configDir"]
    done = subprocess.run(
        [*command, str(conf)], capture_output=True, text=True, timeout=120, check=False
    )
    results = [
        line.removeprefix(_TOOL_RESULT)
        for line in done.stdout.splitlines()
        if line.startswith(_TOOL_RESULT)
    ]
    if done.returncode != 0 or len(results) < 2:  # noqa: PLR2004 - JVM flags, then settings
        msg = f"Flink could not size the TaskManager's memory:\n{done.stdout[-2000:]}"
        raise LocalClusterError(msg)
    return results[-2].split(), results[-1].split()


def _worker_env() -> dict[str, str]:
    """The worker pool starts each SDK worker as ``python``: make that this virtualenv's."""
    here = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([here, os.environ.get("PATH", "")])}


def _mark(state_dir: Path) -> str:
    """What each process's command line carries (``-D`` for a JVM, ``-X`` for Python)."""
    return f"{_DIR_PROPERTY}={state_dir}"


def _pid(state_dir: Path, name: str) -> int | None:
    flag = "" if name == "worker-pool" else "-D"
    return pid_from_file(state_dir / f"{name}.pid", f"{flag}{_mark(state_dir)}".encode())


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        ports.append(free_port(exclude=ports, error=LocalClusterError))
    return ports


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def _overview(rest_url: str) -> dict[str, int]:
    try:
        with _OPENER.open(f"{rest_url}/overview", timeout=2.0) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return {}


def _rest_answers(rest_url: str) -> bool:
    return bool(_overview(rest_url))


def _slots(rest_url: str) -> int:
    return int(_overview(rest_url).get("slots-total", 0))


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((HOST, port)) == 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; progress goes to stderr, results to stdout."""
    parser = argparse.ArgumentParser(prog="local_cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "status", "stop"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help="state folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="local-cluster: %(message)s", stream=sys.stderr)
    try:
        if args.command == "stop":
            print("stopped" if stop(args.dir) else "not running")
            return 0
        cluster = start(args.dir) if args.command == "start" else status(args.dir)
    except (LocalServiceError, WirenewsError, OSError) as exc:  # no jar, no java, no port...
        print(f"local-cluster: error: {exc}", file=sys.stderr)
        return 1
    if cluster is None:
        print("not running")
        return 1
    print(f"Flink web UI: {cluster.rest_url}", file=sys.stderr)
    print(" ".join(cluster.run_flags()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
