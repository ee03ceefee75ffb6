#!/usr/bin/env python3
"""Local single-node Apache Kafka broker (KRaft, no Docker) for tests and development.

The broker runs from Maven Central jars on the machine's Java 17+, because a
Kafka tarball or Docker image cannot be fetched where only package registries
are reachable. Stdlib only: this must run with a bare python3, before the
project's virtualenv exists.

Usage as a module::

    addr = start(state_dir=tmp_path / "kafka")   # "127.0.0.1:N"
    status(tmp_path / "kafka")                   # addr, or None
    stop(tmp_path / "kafka")

    # Also a SASL/PLAIN listener (SASL_PLAINTEXT) with these users, for client tests:
    start(state_dir=tmp_path / "kafka", sasl_users={"alice": "s3cret"})
    sasl_address(tmp_path / "kafka")             # "127.0.0.1:M"

Usage as a CLI (the bootstrap address is the last line of stdout)::

    python3 deploy/kafka/local_broker.py start [--port N] [--dir DIR] [--version X.Y.Z]
                                               [--sasl-user NAME:PASSWORD ...]
    python3 deploy/kafka/local_broker.py status [--dir DIR] [--sasl]
    python3 deploy/kafka/local_broker.py stop [--dir DIR]
    python3 deploy/kafka/local_broker.py jars [--version X.Y.Z]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

# The helpers' shared process code sits beside their folders (deploy/ is no package).
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parents[1]))
from local_process import (
    COMPLETE_MARKER,
    HOST,
    LocalServiceError,
    cache_root,
    free_port,
    kill_now,
    locked,
    pid_from_file,
    port_free,
    spawn,
    tail_text,
    terminate,
    wait_ready,
)

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "DEFAULT_STATE_DIR",
    "LocalBrokerError",
    "ensure_jars",
    "sasl_address",
    "start",
    "status",
    "stop",
]

log = logging.getLogger("wirenews.local_broker")

DEFAULT_KAFKA_VERSION = "4.4.0"
NODE_ID = 1
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
POM = HERE / "pom.xml"
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "kafka"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
    # Each client/config object dumps every setting at INFO: thousands of lines
    # that bury the errors we show when start-up fails.
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config.AbstractConfig=warn",
)


class LocalBrokerError(LocalServiceError):
    """The local broker could not be set up, started or stopped."""


# --------------------------------------------------------------------------- jars


def _pom_digest() -> str:
    """Digest of pom.xml, so editing the pom invalidates cached layouts."""
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_jars(version: str = DEFAULT_KAFKA_VERSION) -> Path:
    """Return a directory holding the broker's runtime jars, downloading them on first use.

    The layout is built in a temporary sibling directory and renamed into place,
    so an interrupted download is never mistaken for a complete cache.
    """
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        msg = f"Kafka version must look like 4.1.1, got {version!r}"
        raise LocalBrokerError(msg)
    version_dir = cache_root("kafka") / version
    lib = version_dir / "lib"
    digest = _pom_digest()
    if _layout_ok(lib, version, digest):
        return lib
    version_dir.mkdir(parents=True, exist_ok=True)
    with locked(version_dir / ".lock"):
        if _layout_ok(lib, version, digest):  # another process finished it meanwhile
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            msg = "Maven ('mvn') fetches the Kafka jars but is not on PATH: apt-get install maven"
            raise LocalBrokerError(msg)
        tmp = Path(tempfile.mkdtemp(prefix="lib.tmp-", dir=version_dir))
        try:
            log.info(
                "fetching Kafka %s jars from Maven Central into %s (first run only)", version, lib
            )
            started = time.monotonic()
            cmd = [
                mvn, "-q", "-B", "-f", str(POM),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp}",
                f"-Dkafka.version={version}",
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
            if proc.returncode != 0:
                raise LocalBrokerError(
                    f"mvn failed to fetch Kafka {version} jars (exit {proc.returncode}):\n"
                    + tail_text(proc.stdout + proc.stderr)
                )
            if not (tmp / f"kafka_2.13-{version}.jar").is_file():
                msg = f"mvn finished but kafka_2.13-{version}.jar is missing from {tmp}"
                raise LocalBrokerError(msg)
            (tmp / COMPLETE_MARKER).write_text(digest + "\n")
            old: Path | None = None
            if lib.exists():  # stale layout from an older pom: swap, then delete
                old = Path(tempfile.mkdtemp(prefix="lib.old-", dir=version_dir))
                lib.rename(old / "lib")
            tmp.rename(lib)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            log.info("Kafka %s jars ready in %.1f s", version, time.monotonic() - started)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return lib


def _layout_ok(lib: Path, version: str, digest: str) -> bool:
    """True when lib was completely laid out from the current pom."""
    marker = lib / COMPLETE_MARKER
    try:
        return (
            marker.read_text().strip() == digest and (lib / f"kafka_2.13-{version}.jar").is_file()
        )
    except OSError:
        return False


# ------------------------------------------------------------------- lifecycle


def start(
    port: int | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
    timeout: float = 90.0,
    version: str = DEFAULT_KAFKA_VERSION,
    sasl_users: Mapping[str, str] | None = None,
) -> str:
    """Start (or find) the broker for state_dir and return its bootstrap address.

    Idempotent: if this directory's broker is already running it is reused, so
    several tests or shells can call start() without coordinating.

    ``sasl_users`` (name → password) adds a SASL_PLAINTEXT listener with the PLAIN
    mechanism and those users, so clients' security settings can be tested; its
    address is :func:`sasl_address`. The PLAINTEXT listener is unchanged. The
    passwords are written to server.properties: throwaway test credentials only.
    """
    if port is not None and not 0 < port < 65536:  # noqa: PLR2004 - TCP port range
        msg = f"port must be 1..65535, got {port}"
        raise LocalBrokerError(msg)
    users = dict(sasl_users or {})
    for name, password in users.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not password or '"' in password:
            msg = f"SASL user names are [A-Za-z0-9_.-]+ with a password without quotes: {name!r}"
            raise LocalBrokerError(msg)
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with locked(state_dir / ".lock"):
        pid = _broker_pid(state_dir)
        if pid is not None:
            if users and sasl_address(state_dir) is None:
                msg = f"the broker from {state_dir} runs without a SASL listener; stop it first"
                raise LocalBrokerError(msg)
            return _reuse_running(state_dir, pid, port, timeout)
        _remove_runtime_files(state_dir)
        java = _java()
        lib = ensure_jars(version)
        broker_port, controller_port = _choose_ports(state_dir, port)
        sasl_port = free_port({broker_port, controller_port}, LocalBrokerError) if users else None
        props = _write_config(state_dir, broker_port, controller_port, sasl_port, users)
        _format_storage(java, lib, state_dir, props)
        address = _launch(java, lib, state_dir, props, port=broker_port, timeout=timeout)
        if sasl_port is not None:
            (state_dir / "bootstrap-sasl").write_text(f"{HOST}:{sasl_port}\n")
            log.info("SASL/PLAIN listener (SASL_PLAINTEXT) on %s:%d", HOST, sasl_port)
        return address


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop this directory's broker; True if one was running. Harmless when none is.

    SIGTERM lets Kafka shut down cleanly (faster recovery on the next start);
    SIGKILL after STOP_GRACE_SECONDS keeps a wedged JVM from blocking callers.
    """
    state_dir = Path(state_dir).resolve()
    pid = _broker_pid(state_dir)
    if pid is None:
        _remove_runtime_files(state_dir)
        return False
    terminate(pid, "Kafka broker", LocalBrokerError)
    _remove_runtime_files(state_dir)
    return True


def sasl_address(state_dir: Path = DEFAULT_STATE_DIR) -> str | None:
    """The SASL_PLAINTEXT listener's address, if this directory's broker was started with one."""
    try:
        text = (Path(state_dir).resolve() / "bootstrap-sasl").read_text().strip()
    except OSError:
        return None
    return text if re.fullmatch(r"[\w.\-]+:\d+", text) else None


def status(state_dir: Path = DEFAULT_STATE_DIR) -> str | None:
    """Bootstrap address if this directory's broker is running and answering, else None."""
    state_dir = Path(state_dir).resolve()
    if _broker_pid(state_dir) is None:
        return None
    addr = _read_bootstrap(state_dir)
    if addr is None:
        return None
    host, _, port = addr.rpartition(":")
    return addr if _probe(host, int(port), timeout=3.0) else None


def _reuse_running(state_dir: Path, pid: int, port: int | None, timeout: float) -> str:
    """Return the running broker's address, waiting if it is still starting up."""
    addr = _read_bootstrap(state_dir)
    if addr is None:
        msg = f"broker pid {pid} runs from {state_dir} but has no bootstrap file; stop it first"
        raise LocalBrokerError(msg)
    running_port = int(addr.rpartition(":")[2])
    if port is not None and port != running_port:
        msg = f"broker from {state_dir} already runs on {addr}, not port {port}; stop it first"
        raise LocalBrokerError(msg)
    log.info("broker from %s already running (pid %d)", state_dir, pid)
    _wait_ready(state_dir, pid, running_port, timeout)
    return addr


def _launch(
    java: str, lib: Path, state_dir: Path, props: Path, *, port: int, timeout: float
) -> str:
    """Spawn the JVM detached in its own process group and wait until it serves requests."""
    cmd = [java, *JVM_OPTS, "-cp", f"{lib}/*", "kafka.Kafka", str(props)]
    log.info("starting Kafka broker on %s:%d (log: %s)", HOST, port, state_dir / "broker.log")
    started = time.monotonic()
    proc = spawn(cmd, state_dir, "broker.log")
    addr = f"{HOST}:{port}"
    (state_dir / "broker.pid").write_text(f"{proc.pid}\n")
    (state_dir / "bootstrap").write_text(addr + "\n")
    try:
        _wait_ready(state_dir, proc.pid, port, timeout)
    except BaseException:
        kill_now(proc.pid)
        _remove_runtime_files(state_dir)
        raise
    log.info("broker ready at %s in %.1f s", addr, time.monotonic() - started)
    return addr


def _wait_ready(state_dir: Path, pid: int, port: int, timeout: float) -> None:
    """Poll the broker with Kafka requests until it answers, it dies, or timeout passes."""
    wait_ready(
        pid,
        lambda seconds: _probe(HOST, port, timeout=seconds),
        timeout=timeout,
        what=f"Kafka broker on {HOST}:{port}",
        log_path=state_dir / "broker.log",
        error=LocalBrokerError,
    )


# ---------------------------------------------------------------- config/format


def _java() -> str:
    """The java binary: $JAVA_HOME/bin/java when JAVA_HOME is set, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not os.access(java, os.X_OK):
            msg = f"JAVA_HOME={home} but {java} is not an executable; fix JAVA_HOME or unset it"
            raise LocalBrokerError(msg)
        return str(java)
    found = shutil.which("java")
    if found is None:
        msg = "no java found: set JAVA_HOME or install Java 17+ (openjdk-17-jre-headless)"
        raise LocalBrokerError(msg)
    return found


def _choose_ports(state_dir: Path, port: int | None) -> tuple[int, int]:
    """Pick broker and controller ports; reuse the previous ones so the address stays stable."""
    previous = _previous_ports(state_dir)
    if port is not None:
        if not port_free(port):
            msg = f"port {port} on {HOST} is already in use"
            raise LocalBrokerError(msg)
        broker = port
    elif previous and port_free(previous[0]):
        broker = previous[0]
    else:
        broker = free_port({previous[1]} if previous else (), LocalBrokerError)
    if previous and previous[1] != broker and port_free(previous[1]):
        controller = previous[1]
    else:
        controller = free_port({broker}, LocalBrokerError)
    return broker, controller


def _previous_ports(state_dir: Path) -> tuple[int, int] | None:
    """Broker and controller ports from the last server.properties written here, if any."""
    try:
        text = (state_dir / "server.properties").read_text()
    except OSError:
        return None
    # [=,] so that SASL_PLAINTEXT:// is never taken for PLAINTEXT://.
    broker = re.search(r"^listeners=(?:.*,)?PLAINTEXT://[^:,]+:(\d+)", text, re.M)
    controller = re.search(r"^listeners=(?:.*,)?CONTROLLER://[^:,]+:(\d+)", text, re.M)
    if broker and controller:
        return int(broker.group(1)), int(controller.group(1))
    return None


def _write_config(
    state_dir: Path,
    broker_port: int,
    controller_port: int,
    sasl_port: int | None = None,
    sasl_users: Mapping[str, str] | None = None,
) -> Path:
    """Write server.properties for a combined broker+controller node with RF-1 internal topics.

    With ``sasl_port``, a SASL_PLAINTEXT listener takes PLAIN logins of ``sasl_users``;
    brokers and the controller keep talking over the plain-text listeners.
    """
    data = state_dir / "data"
    props = state_dir / "server.properties"
    listeners = f"PLAINTEXT://{HOST}:{broker_port},CONTROLLER://{HOST}:{controller_port}"
    advertised = f"PLAINTEXT://{HOST}:{broker_port}"
    protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    sasl: dict[str, str] = {}
    if sasl_port is not None:
        listeners += f",SASL_PLAINTEXT://{HOST}:{sasl_port}"
        advertised += f",SASL_PLAINTEXT://{HOST}:{sasl_port}"
        protocols += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
        logins = " ".join(f'user_{name}="{pw}"' for name, pw in (sasl_users or {}).items())
        sasl = {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {logins};"
            ),
        }
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": protocols,
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "1",
        # Tests create their topics, but kcat -P and ad-hoc tools are easier with auto-create.
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        # One partition instead of 50: the first consumer group joins in well under a second.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        **sasl,
    }
    lines = ["# Written by deploy/kafka/local_broker.py on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    props.write_text("\n".join(lines) + "\n")
    return props


def _format_storage(java: str, lib: Path, state_dir: Path, props: Path) -> None:
    """Format the KRaft log dir once; an already formatted dir keeps its data and cluster id."""
    data = state_dir / "data"
    if (data / "meta.properties").is_file():
        return
    if data.exists():
        # Without meta.properties Kafka refuses the dir anyway: a format was interrupted.
        log.warning("%s has no meta.properties (interrupted format?); recreating it", data)
        shutil.rmtree(data)
    cluster_id = _new_cluster_id()
    log.info("formatting %s (cluster id %s)", data, cluster_id)
    cmd = [
        # C1 only: a short-lived tool starts ~20% faster without the optimising JIT.
        java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{lib}/*",
        "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
        "-t", cluster_id, "-c", str(props),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, cwd=state_dir
    )
    if proc.returncode != 0:
        raise LocalBrokerError(
            f"kafka-storage format failed (exit {proc.returncode}):\n"
            + tail_text(proc.stdout + proc.stderr)
        )


def _new_cluster_id() -> str:
    """A random cluster id in Kafka's Uuid text form (base64url, 22 chars, no leading '-')."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


# ---------------------------------------------------------------- processes


def _broker_pid(state_dir: Path) -> int | None:
    """Pid from broker.pid if that process is alive and is this directory's broker."""
    properties = str(state_dir / "server.properties").encode()
    return pid_from_file(state_dir / "broker.pid", b"kafka.Kafka", properties)


def _remove_runtime_files(state_dir: Path) -> None:
    """Drop pid and bootstrap files so nobody reads a stale address."""
    for name in ("broker.pid", "bootstrap", "bootstrap-sasl"):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()


def _read_bootstrap(state_dir: Path) -> str | None:
    try:
        text = (state_dir / "bootstrap").read_text().strip()
    except OSError:
        return None
    return text if re.fullmatch(r"[\w.\-]+:\d+", text) else None


# ------------------------------------------------------------ Kafka protocol probe
#
# Readiness means "answers Kafka requests", not "port open" (an open port says
# nothing about what answers on it). Two requests over a raw socket, stdlib only:
# ApiVersions v0 (answered by every broker version, even to say a version is
# unsupported), then Metadata (non-flexible v4..v8) to see this broker registered.

_API_METADATA = 3
_API_VERSIONS = 18
_ERR_UNSUPPORTED_VERSION = 35
_METADATA_V8 = 8  # first version with the include_*_authorized_operations flags
_METADATA_MIN_PARSED = 4  # the request/response layouts below cover Metadata v4..v8
_CORRELATION_ID_SIZE = 4
_MAX_PROBE_RESPONSE = 16 * 1024 * 1024


class _ProbeError(Exception):
    """Malformed or unexpected reply while probing."""


def _probe(host: str, port: int, timeout: float) -> bool:
    """True if a Kafka broker on host:port answers ApiVersions and lists itself in Metadata."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            versions = _api_versions(sock)
            meta_range = versions.get(_API_METADATA)
            if meta_range is None:
                return False
            usable = [
                v
                for v in range(_METADATA_MIN_PARSED, _METADATA_V8 + 1)
                if meta_range[0] <= v <= meta_range[1]
            ]
            if not usable:
                return True  # a future broker without non-flexible Metadata; ApiVersions must do
            brokers = _metadata_brokers(sock, usable[-1])
            return any(node == NODE_ID and bport == port for node, _, bport in brokers)
    except (OSError, _ProbeError, struct.error):
        return False


def _request(
    sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes
) -> bytes:
    """Send one request with header v1 and return the response body after the correlation id."""
    client_id = b"wirenews-local-broker"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    message = header + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    if not _CORRELATION_ID_SIZE <= size <= _MAX_PROBE_RESPONSE:
        msg = f"implausible response size {size}"
        raise _ProbeError(msg)
    payload = _recv_exact(sock, size)
    (got,) = struct.unpack_from(">i", payload, 0)
    if got != correlation_id:
        msg = f"correlation id {got}, expected {correlation_id}"
        raise _ProbeError(msg)
    return payload[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            msg = "connection closed mid-response"
            raise _ProbeError(msg)
        buf += chunk
    return bytes(buf)


def _api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    """ApiVersions v0: {api_key: (min_version, max_version)}."""
    body = _request(sock, _API_VERSIONS, 0, 1, b"")
    error, count = struct.unpack_from(">hi", body, 0)
    if error not in (0, _ERR_UNSUPPORTED_VERSION):
        msg = f"ApiVersions error {error}"
        raise _ProbeError(msg)
    versions: dict[int, tuple[int, int]] = {}
    for i in range(count):
        key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * i)
        versions[key] = (low, high)
    return versions


def _metadata_brokers(sock: socket.socket, version: int) -> list[tuple[int, str, int]]:
    """Metadata (v4..v8) for no topics: [(node_id, host, port)] of live brokers."""
    body = struct.pack(">i", 0) + b"\x00"  # topics: empty array; allow_auto_topic_creation: false
    if version >= _METADATA_V8:
        body += b"\x00\x00"  # include cluster/topic authorized operations: false
    resp = _request(sock, _API_METADATA, version, 2, body)
    offset = 4  # throttle_time_ms
    (count,) = struct.unpack_from(">i", resp, offset)
    offset += 4
    brokers = []
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", resp, offset)
        offset += 6
        host = resp[offset : offset + host_len].decode()
        offset += host_len
        port, rack_len = struct.unpack_from(">ih", resp, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((node_id, host, port))
    return brokers


# ----------------------------------------------------------------------- CLI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local-broker",
        description="Local single-node Kafka broker (KRaft) from Maven Central jars.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dir_help = f"state directory: config, data, broker.log (default: {DEFAULT_STATE_DIR})"
    p_start = sub.add_parser(
        "start", help="start the broker (or find the running one); prints its address"
    )
    p_start.add_argument(
        "--port",
        type=int,
        default=None,
        help="broker port on 127.0.0.1 (default: previous or free)",
    )
    p_start.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_start.add_argument(
        "--version", default=DEFAULT_KAFKA_VERSION, help="Kafka version (default: %(default)s)"
    )
    p_start.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for readiness"
    )
    p_start.add_argument(
        "--sasl-user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="add a SASL_PLAINTEXT listener (PLAIN) with this user (repeatable); its "
        "address is `status --sasl`. Throwaway test credentials: they are stored in "
        "server.properties",
    )
    p_stop = sub.add_parser("stop", help="stop the broker")
    p_stop.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_status = sub.add_parser(
        "status", help="print the address if running (exit 0), else 'not running' (exit 1)"
    )
    p_status.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_status.add_argument(
        "--sasl", action="store_true", help="print the SASL_PLAINTEXT listener's address instead"
    )
    p_jars = sub.add_parser("jars", help="download/cache the broker jars and print their directory")
    p_jars.add_argument(
        "--version", default=DEFAULT_KAFKA_VERSION, help="Kafka version (default: %(default)s)"
    )
    return parser.parse_args(argv)


def _user(item: str) -> tuple[str, str]:
    """``NAME:PASSWORD`` from ``--sasl-user``."""
    name, sep, password = item.partition(":")
    if not sep or not name or not password:
        msg = f"--sasl-user takes NAME:PASSWORD, got {name or item!r}:..."
        raise LocalBrokerError(msg)
    return name, password


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; progress goes to stderr, results to stdout."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="local-broker: %(message)s", stream=sys.stderr)
    try:
        if args.command == "start":
            users = dict(_user(item) for item in args.sasl_user)
            print(
                start(
                    port=args.port,
                    state_dir=args.dir,
                    timeout=args.timeout,
                    version=args.version,
                    sasl_users=users,
                )
            )
            return 0
        if args.command == "stop":
            print("stopped" if stop(args.dir) else "not running")
            return 0
        if args.command == "status":
            addr = status(args.dir)
            if addr and args.sasl:
                addr = sasl_address(args.dir)
            print(addr or "not running")
            return 0 if addr else 1
        print(ensure_jars(args.version))
        return 0
    except LocalBrokerError as exc:
        print(f"local-broker: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
