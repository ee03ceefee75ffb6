#!/usr/bin/env python3
"""Local Apicurio schema registry (Confluent-compatible API, in-memory) for tests and development.

Runs the real Apicurio Registry from its Maven Central distribution
(``io.apicurio:apicurio-registry-app:<version>:tar.gz:all``, a Quarkus fast-jar
tree) because a Docker image cannot be fetched where only package registries are
reachable. Storage is Apicurio's default in-memory H2 database: schemas live
as long as the process. Stdlib only: this must run with a bare python3, before
the project's virtualenv exists.

Apicurio 3.x is compiled for Java 21, so the JVM is looked up (JAVA_HOME, then
java on PATH, then /usr/lib/jvm/*) until one new enough turns up; the machine's
default Java 17 only runs the 2.6.x line.

Usage as a module::

    url = start(state_dir=tmp_path / "registry")  # "http://127.0.0.1:N/apis/ccompat/v7"
    status(tmp_path / "registry")                 # url, or None
    stop(tmp_path / "registry")

Usage as a CLI (the base URL is the last line of stdout)::

    python3 deploy/registry/local_registry.py start [--port N] [--dir DIR] [--version V]
    python3 deploy/registry/local_registry.py status [--dir DIR]
    python3 deploy/registry/local_registry.py stop [--dir DIR]
    python3 deploy/registry/local_registry.py fetch [--version V]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
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
    "DEFAULT_REGISTRY_VERSION",
    "DEFAULT_STATE_DIR",
    "LocalRegistryError",
    "ensure_app",
    "find_java",
    "start",
    "status",
    "stop",
]

log = logging.getLogger("wirenews.local_registry")

DEFAULT_REGISTRY_VERSION = "3.3.3"
API_PATH = "/apis/ccompat/v7"
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "registry"
GROUP_ID = "io.apicurio"
ARTIFACT_ID = "apicurio-registry-app"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
JVM_OPTS = (
    "-Xmx256m",
    # A test registry holds a handful of schemas: a small serial heap and the C1 JIT
    # start faster and use less memory than the server defaults.
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)
# Marks the JVM's command line so stop()/status() only ever signal this directory's registry.
_DIR_PROPERTY = "wirenews.registry.dir"


class LocalRegistryError(LocalServiceError):
    """The local schema registry could not be set up, started or stopped."""


# ------------------------------------------------------------------- artifacts


def _check_version(version: str) -> None:
    if not re.fullmatch(r"\d+\.\d+\.\d+(\.Final)?", version):
        msg = f"Apicurio version must look like 3.3.3 or 2.6.13.Final, got {version!r}"
        raise LocalRegistryError(msg)


def _coordinate(version: str) -> str:
    return f"{GROUP_ID}:{ARTIFACT_ID}:{version}:tar.gz:all"


def ensure_app(version: str = DEFAULT_REGISTRY_VERSION) -> Path:
    """Return the unpacked registry distribution for version, downloading it on first use.

    The tarball is unpacked by maven-dependency-plugin into a temporary sibling
    directory that is renamed into place, so an interrupted download is never
    mistaken for a complete cache.
    """
    _check_version(version)
    version_dir = cache_root("registry") / version
    app = version_dir / "app"
    if _layout_ok(app, version):
        return app
    version_dir.mkdir(parents=True, exist_ok=True)
    with locked(version_dir / ".lock"):
        if _layout_ok(app, version):  # another process finished it meanwhile
            return app
        mvn = shutil.which("mvn")
        if mvn is None:
            msg = "Maven ('mvn') fetches the registry but is not on PATH: apt-get install maven"
            raise LocalRegistryError(msg)
        tmp = Path(tempfile.mkdtemp(prefix="app.tmp-", dir=version_dir))
        markers = Path(tempfile.mkdtemp(prefix="markers.tmp-", dir=version_dir))
        try:
            log.info(
                "fetching Apicurio Registry %s from Maven Central into %s (first run only)",
                version,
                app,
            )
            started = time.monotonic()
            cmd = [
                mvn, "-q", "-B",
                f"{DEPENDENCY_PLUGIN}:unpack",
                f"-Dartifact={_coordinate(version)}",
                f"-DoutputDirectory={tmp}",
                f"-DmarkersDirectory={markers}",
            ]  # fmt: skip
            # cwd: a pom-less run resolves ${project.basedir} to a literal directory there.
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=900, check=False, cwd=markers
            )
            if proc.returncode != 0:
                raise LocalRegistryError(
                    f"mvn failed to fetch {_coordinate(version)} (exit {proc.returncode}):\n"
                    + tail_text(proc.stdout + proc.stderr)
                )
            if _launch_jar(tmp) is None:
                msg = f"mvn unpacked {_coordinate(version)} but {tmp} holds no Quarkus runner jar"
                raise LocalRegistryError(msg)
            (tmp / COMPLETE_MARKER).write_text(_coordinate(version) + "\n")
            tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache may be shared
            if app.exists():  # a broken earlier layout: swap, then delete
                old = Path(tempfile.mkdtemp(prefix="app.old-", dir=version_dir))
                app.rename(old / "app")
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(app)
            log.info("Apicurio Registry %s ready in %.1f s", version, time.monotonic() - started)
        finally:
            for path in (tmp, markers):
                if path.exists():
                    shutil.rmtree(path, ignore_errors=True)
    return app


def _layout_ok(app: Path, version: str) -> bool:
    """True when app was completely unpacked from this version's distribution."""
    try:
        marker = (app / COMPLETE_MARKER).read_text().strip()
    except OSError:
        return False
    return marker == _coordinate(version) and _launch_jar(app) is not None


def _launch_jar(app: Path) -> Path | None:
    """quarkus-run.jar (fast-jar, Apicurio 3.x) or *-runner.jar (legacy jar, Apicurio 2.x)."""
    fast = app / "quarkus-run.jar"
    if fast.is_file():
        return fast
    runners = sorted(app.glob("*-runner.jar"))
    return runners[0] if runners else None


# ------------------------------------------------------------------------ java


def _required_java(version: str) -> int:
    """Apicurio 3.x classes are Java 21 bytecode (class file 65); 2.x runs on Java 17."""
    return 21 if int(version.split(".", 1)[0]) >= 3 else 17  # noqa: PLR2004 - major versions


def _java_major(java: str) -> int | None:
    """Feature version of a java binary (17, 21, 25...), or None if it does not run."""
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def find_java(minimum: int) -> str:
    """A java binary of at least version minimum.

    $JAVA_HOME/bin/java, then java on PATH, if new enough; else the newest
    /usr/lib/jvm/*/bin/java that is, so a machine whose default is Java 17 can
    still run Apicurio 3.x from a side-by-side JDK.
    """
    preferred: list[str] = []
    home = os.environ.get("JAVA_HOME")
    if home:
        preferred.append(str(Path(home) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        preferred.append(on_path)
    found: list[str] = []
    seen: set[str] = set()
    for candidate in preferred:
        seen.add(os.path.realpath(candidate))
        major = _java_major(candidate)
        found.append(f"{candidate} ({major or 'unusable'})")
        if major is not None and major >= minimum:
            return candidate
    installed: list[tuple[int, str]] = []
    for candidate in sorted(glob.glob("/usr/lib/jvm/*/bin/java")):
        real = os.path.realpath(candidate)
        if real in seen:  # symlinked aliases of one JDK
            continue
        seen.add(real)
        major = _java_major(candidate)
        found.append(f"{candidate} ({major or 'unusable'})")
        if major is not None and major >= minimum:
            installed.append((major, candidate))
    if installed:
        return max(installed)[1]
    msg = (
        f"this Apicurio version needs Java {minimum}+; found only "
        + (", ".join(found) or "no java at all")
        + f". Set JAVA_HOME to a JDK {minimum}+ or pass --java"
    )
    raise LocalRegistryError(msg)


# ------------------------------------------------------------------- lifecycle


def start(
    port: int | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
    timeout: float = 120.0,
    version: str = DEFAULT_REGISTRY_VERSION,
    java: str | None = None,
) -> str:
    """Start (or find) the registry for state_dir and return its base URL.

    The URL is the Confluent-compatible API root, ``http://127.0.0.1:N/apis/ccompat/v7``.
    Returns once ``GET <url>/subjects`` answers 200. Idempotent: if this
    directory's registry is already running it is reused.
    """
    if port is not None and not 0 < port < 65536:  # noqa: PLR2004 - TCP port range
        msg = f"port must be 1..65535, got {port}"
        raise LocalRegistryError(msg)
    _check_version(version)
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with locked(state_dir / ".lock"):
        pid = _registry_pid(state_dir)
        if pid is not None:
            return _reuse_running(state_dir, pid, port, timeout)
        _remove_runtime_files(state_dir)
        java_bin = _checked_java(java, version)
        app = ensure_app(version)
        http_port = _choose_port(state_dir, port)
        return _launch(java_bin, app, state_dir, port=http_port, timeout=timeout)


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> bool:
    """Stop this directory's registry; True if one was running. Harmless when none is.

    SIGTERM lets Quarkus shut down cleanly; SIGKILL after STOP_GRACE_SECONDS keeps
    a wedged JVM from blocking callers.
    """
    state_dir = Path(state_dir).resolve()
    pid = _registry_pid(state_dir)
    if pid is None:
        _remove_runtime_files(state_dir)
        return False
    terminate(pid, "schema registry", LocalRegistryError)
    _remove_runtime_files(state_dir)
    return True


def status(state_dir: Path = DEFAULT_STATE_DIR) -> str | None:
    """Base URL if this directory's registry is running and answering, else None."""
    state_dir = Path(state_dir).resolve()
    if _registry_pid(state_dir) is None:
        return None
    url = _read_url(state_dir)
    if url is None:
        return None
    return url if _probe(url, timeout=3.0) else None


def _checked_java(java: str | None, version: str) -> str:
    """The given java if it is new enough for version, else the one find_java picks."""
    minimum = _required_java(version)
    if java is None:
        return find_java(minimum)
    major = _java_major(java)
    if major is None or major < minimum:
        msg = f"{java} is Java {major or '?'}; Apicurio {version} needs Java {minimum}+"
        raise LocalRegistryError(msg)
    return java


def _base_url(port: int) -> str:
    return f"http://{HOST}:{port}{API_PATH}"


def _reuse_running(state_dir: Path, pid: int, port: int | None, timeout: float) -> str:
    """Return the running registry's URL, waiting if it is still starting up."""
    url = _read_url(state_dir)
    if url is None:
        msg = f"registry pid {pid} runs from {state_dir} but has no url file; stop it first"
        raise LocalRegistryError(msg)
    if port is not None and url != _base_url(port):
        msg = f"registry from {state_dir} already runs at {url}, not port {port}; stop it first"
        raise LocalRegistryError(msg)
    log.info("registry from %s already running (pid %d)", state_dir, pid)
    _wait_ready(state_dir, pid, url, timeout)
    return url


def _launch(java: str, app: Path, state_dir: Path, *, port: int, timeout: float) -> str:
    """Spawn the JVM detached in its own process group and wait until the API answers."""
    jar = _launch_jar(app)
    if jar is None:
        msg = f"no Quarkus runner jar in {app}"
        raise LocalRegistryError(msg)
    tmp = state_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    props = {
        _DIR_PROPERTY: str(state_dir),
        "java.io.tmpdir": str(tmp),
        "quarkus.http.host": HOST,
        "quarkus.http.port": str(port),
        # Apicurio 3.x opens a management interface (health, metrics) on 0.0.0.0:9000 by
        # default: keep it on loopback and on a port the kernel picks, so it never clashes.
        "quarkus.management.host": HOST,
        "quarkus.management.port": "0",
        "apicurio.storage.snapshot.location": str(tmp),
        "apicurio.import.work-dir": str(tmp),
    }
    cmd = [java, *JVM_OPTS, *(f"-D{k}={v}" for k, v in props.items()), "-jar", str(jar)]
    log.info("starting schema registry on %s:%d (log: %s)", HOST, port, state_dir / "registry.log")
    started = time.monotonic()
    # Quarkus also reads config/application.properties and .env from the state folder.
    proc = spawn(cmd, state_dir, "registry.log")
    url = _base_url(port)
    (state_dir / "registry.pid").write_text(f"{proc.pid}\n")
    (state_dir / "url").write_text(url + "\n")
    (state_dir / "port").write_text(f"{port}\n")  # kept after stop: reused next time
    try:
        _wait_ready(state_dir, proc.pid, url, timeout)
    except BaseException:
        kill_now(proc.pid)
        _remove_runtime_files(state_dir)
        raise
    log.info("registry ready at %s in %.1f s", url, time.monotonic() - started)
    return url


def _wait_ready(state_dir: Path, pid: int, url: str, timeout: float) -> None:
    """Poll GET <url>/subjects until it answers 200, the JVM dies, or timeout passes."""
    wait_ready(
        pid,
        lambda seconds: _probe(url, timeout=seconds),
        timeout=timeout,
        what=f"schema registry at {url}",
        log_path=state_dir / "registry.log",
        error=LocalRegistryError,
    )


# The registry is on loopback: never route the probe through an http_proxy from the env.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _probe(url: str, timeout: float) -> bool:
    """True if GET <url>/subjects answers 200 (the ccompat API is up and storage is ready)."""
    request = urllib.request.Request(  # noqa: S310 - url is always http://127.0.0.1:N/...
        f"{url}/subjects", headers={"Accept": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            return bool(response.status == 200)  # noqa: PLR2004 - HTTP OK
    except (OSError, urllib.error.URLError, ValueError):
        return False


# ------------------------------------------------------------------------ ports


def _choose_port(state_dir: Path, port: int | None) -> int:
    """The requested port, else the previous one if free (stable URL), else a free one."""
    if port is not None:
        if not port_free(port):
            msg = f"port {port} on {HOST} is already in use"
            raise LocalRegistryError(msg)
        return port
    previous = _previous_port(state_dir)
    if previous is not None and port_free(previous):
        return previous
    return free_port(error=LocalRegistryError)


def _previous_port(state_dir: Path) -> int | None:
    try:
        port = int((state_dir / "port").read_text().strip())
    except (OSError, ValueError):
        return None
    return port if 0 < port < 65536 else None  # noqa: PLR2004 - TCP port range


# ---------------------------------------------------------------- processes


def _registry_pid(state_dir: Path) -> int | None:
    """Pid from registry.pid if that process is alive and is this directory's registry."""
    return pid_from_file(state_dir / "registry.pid", f"-D{_DIR_PROPERTY}={state_dir}".encode())


def _remove_runtime_files(state_dir: Path) -> None:
    """Drop pid and url files so nobody reads a stale address."""
    for name in ("registry.pid", "url"):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()


def _read_url(state_dir: Path) -> str | None:
    try:
        text = (state_dir / "url").read_text().strip()
    except OSError:
        return None
    pattern = rf"http://{re.escape(HOST)}:\d+{re.escape(API_PATH)}"
    return text if re.fullmatch(pattern, text) else None


# ----------------------------------------------------------------------- CLI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="local-registry",
        description="Local Apicurio schema registry (Confluent-compatible API, in-memory).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    dir_help = f"state directory: registry.log, pid, url (default: {DEFAULT_STATE_DIR})"
    version_help = "Apicurio Registry version (default: %(default)s)"
    p_start = sub.add_parser(
        "start", help="start the registry (or find the running one); prints its base URL"
    )
    p_start.add_argument(
        "--port", type=int, default=None, help="HTTP port on 127.0.0.1 (default: previous or free)"
    )
    p_start.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_start.add_argument("--version", default=DEFAULT_REGISTRY_VERSION, help=version_help)
    p_start.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for readiness"
    )
    p_start.add_argument(
        "--java", default=None, help="java binary (default: first Java new enough, see README)"
    )
    p_stop = sub.add_parser("stop", help="stop the registry")
    p_stop.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_status = sub.add_parser(
        "status", help="print the base URL if running (exit 0), else 'not running' (exit 1)"
    )
    p_status.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help=dir_help)
    p_fetch = sub.add_parser(
        "fetch", help="download/cache the registry distribution and print its directory"
    )
    p_fetch.add_argument("--version", default=DEFAULT_REGISTRY_VERSION, help=version_help)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; progress goes to stderr, results to stdout."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="local-registry: %(message)s", stream=sys.stderr)
    try:
        if args.command == "start":
            url = start(
                port=args.port,
                state_dir=args.dir,
                timeout=args.timeout,
                version=args.version,
                java=args.java,
            )
            print(url)
            return 0
        if args.command == "stop":
            print("stopped" if stop(args.dir) else "not running")
            return 0
        if args.command == "status":
            url = status(args.dir)
            print(url or "not running")
            return 0 if url else 1
        print(ensure_app(args.version))
        return 0
    except LocalRegistryError as exc:
        print(f"local-registry: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
