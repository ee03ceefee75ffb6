"""What the local broker and registry helpers share: their cache, pid files and processes.

Each helper runs one JVM in its own session from a state folder and keeps its pid
in a file there; stopping must never signal an unrelated process that reused the
pid, and a child this process started must be reaped, not mistaken for alive.
Stdlib only, like the helpers, which import it from this folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

__all__ = [
    "COMPLETE_MARKER",
    "HOST",
    "LOG_TAIL_LINES",
    "STOP_GRACE_SECONDS",
    "LocalServiceError",
    "adopt",
    "alive",
    "cache_root",
    "free_port",
    "kill_now",
    "locked",
    "pid_from_file",
    "port_free",
    "signal_group",
    "spawn",
    "tail_file",
    "tail_text",
    "terminate",
    "wait_exit",
    "wait_ready",
]

log = logging.getLogger("wirenews.local_process")

HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 30.0
LOG_TAIL_LINES = 40
# Written last into a cached download, so a half-finished one is never taken for whole.
COMPLETE_MARKER = ".wirenews-complete"

# Popen handles of services started by this process, so they get reaped
# (an unreaped child stays a zombie and looks alive to kill(pid, 0)).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class LocalServiceError(RuntimeError):
    """A local service could not be set up, started or stopped."""


def cache_root(kind: str) -> Path:
    """Where downloads of ``kind`` live; WIRENEWS_CACHE lets CI point it at a cached volume."""
    base = os.environ.get("WIRENEWS_CACHE") or str(Path.home() / ".cache" / "wirenews")
    return Path(base) / kind


def adopt(child: subprocess.Popen[bytes]) -> None:
    """Remember a service this process started, so :func:`alive` reaps it when it exits."""
    _CHILDREN[child.pid] = child


def pid_from_file(pid_file: Path, *markers: bytes) -> int | None:
    """The pid in ``pid_file`` if that process is alive and runs what we started.

    On Linux its command line must hold every marker (whole arguments): a guard
    against pid reuse, so we never signal some unrelated process.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    if Path("/proc/self").exists():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not all(marker in args for marker in markers):
            return None
    return pid


def alive(pid: int) -> bool:
    """Whether pid runs (zombies count as dead; our own children get reaped here)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rpartition(")")[2].split()[0] != "Z"


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the service's process group (its own, from start_new_session), or just pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_exit(pid: int, timeout: float) -> bool:
    """Poll until pid has exited; False if it is still alive after timeout seconds."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def spawn(
    command: list[str], state_dir: Path, log_name: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a service detached, in its own process group, writing state_dir/log_name.

    The previous run's log is kept as log_name.1; the folder is its working directory;
    ``env`` replaces the environment if given.
    """
    log_path = state_dir / log_name
    if log_path.exists():
        log_path.replace(state_dir / f"{log_name}.1")
    with open(log_path, "wb") as out:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
            env=env,
            start_new_session=True,  # own process group: stopping signals the whole group
        )
    adopt(child)
    return child


def wait_ready(
    pid: int,
    answers: Callable[[float], bool],
    *,
    timeout: float,
    what: str,
    log_path: Path,
    error: type[LocalServiceError] = LocalServiceError,
) -> None:
    """Ask ``answers(seconds)`` until it says yes, the process dies, or timeout passes.

    Raises:
        error: the process exited, or did not answer in time (with its log's last lines).
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if not alive(pid):
            problem = "exited during start-up"
        elif remaining <= 0:
            problem = f"did not answer within {timeout:.0f} s"
        elif answers(min(2.0, remaining)):
            return
        else:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            continue
        msg = f"{what} {problem}; last lines of {log_path}:\n" + tail_file(log_path)
        raise error(msg)


def kill_now(pid: int) -> None:
    """SIGKILL a service that must not outlive a failed start (also on Ctrl-C)."""
    signal_group(pid, signal.SIGKILL)
    wait_exit(pid, 10.0)


def terminate(pid: int, what: str, error: type[LocalServiceError] = LocalServiceError) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE_SECONDS.

    SIGTERM lets the JVM shut down cleanly (a broker recovers faster on its next
    start); SIGKILL keeps a wedged one from blocking its callers.

    Raises:
        error: it outlived SIGKILL too.
    """
    log.info("stopping %s pid %d", what, pid)
    signal_group(pid, signal.SIGTERM)
    if wait_exit(pid, STOP_GRACE_SECONDS):
        return
    log.warning(
        "%s pid %d ignored SIGTERM for %.0f s; sending SIGKILL", what, pid, STOP_GRACE_SECONDS
    )
    signal_group(pid, signal.SIGKILL)
    if not wait_exit(pid, 10.0):
        msg = f"{what} pid {pid} survived SIGKILL"
        raise error(msg)


def port_free(port: int) -> bool:
    """Whether a listener could bind HOST:port (SO_REUSEADDR like the JVM: TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(
    exclude: Collection[int] = (), error: type[LocalServiceError] = LocalServiceError
) -> int:
    """An ephemeral port the kernel reports free now, not in exclude (racy; fine on a dev box).

    Raises:
        error: twenty tries found none.
    """
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port: int = s.getsockname()[1]
        if port not in exclude:
            return port
    msg = f"could not find a free port on {HOST}"
    raise error(msg)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock, so concurrent starts and downloads serialise."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tail_file(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, or why it could not be read."""
    try:
        return tail_text(path.read_text(errors="replace"), lines)
    except OSError as exc:
        return f"(could not read {path}: {exc})"


def tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of some output."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
