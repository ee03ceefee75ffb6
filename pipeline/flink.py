"""Running on Flink: the Beam Flink job server from Maven Central, in a local cache.

Maven Central here serves no shaded ``beam-runners-flink-*-job-server`` jar, so
the job server is laid out from its parts: ``beam-runners-flink-<flink>`` (which
holds ``FlinkJobServerDriver``) and its runtime dependencies, copied by Maven
into a cache folder, plus a small jar whose manifest names them all. Beam's
``FlinkRunner`` then starts it with ``java -jar`` like any job-server jar. The
Beam version is the installed SDK's: the SDK and the job server never differ.

Example:
    jar = ensure_job_server_jar()          # fetched once, then cached
    configure_flink(options)                # LOOPBACK, the jar, Java 17 flags

    python -m pipeline.flink                # fetch into the cache (``make flink``)
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Collection
from pathlib import Path

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    GoogleCloudOptions,
    JobServerOptions,
    PipelineOptions,
    PortableOptions,
    StandardOptions,
)
from apache_beam.version import __version__ as BEAM_VERSION

from pipeline.options import WirenewsOptions, runner_kind
from transforms.errors import WirenewsError

__all__ = [
    "BEAM_VERSION",
    "FLINK_VERSION",
    "JAVA_17_FLAGS",
    "FlinkCheckpointOptions",
    "cancel_on_cluster",
    "configure_flink",
    "ensure_job_server_jar",
    "flink_jobs",
    "flink_rest_url",
    "name_job",
]

LOGGER = logging.getLogger(__name__)

# The one Flink minor whose Beam runner Maven Central serves here at our Beam version.
FLINK_VERSION = "1.19"
DEFAULT_CACHE = Path("~/.apache_beam/cache/jars").expanduser()
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"
# Flink 1.19 reflects into these JDK packages; Java 17 refuses without --add-opens.
JAVA_17_FLAGS = tuple(
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in ("java.lang", "java.nio", "java.util", "java.lang.reflect", "java.io")
)
_LOCAL_MASTERS = {None, "", "[local]", "[auto]"}
_COMPLETE = ".complete"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>wirenews.flink</groupId>
  <artifactId>flink-job-server</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.beam</groupId>
      <artifactId>beam-runners-flink-{flink}</artifactId>
      <version>{beam}</version>
    </dependency>
    <!-- Flink and Beam log through SLF4J 1.x and bring no binding. -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>1.7.36</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
</project>
"""


class FlinkCheckpointOptions(PipelineOptions):
    """An option of Beam's (Java) Flink runner that Beam's Python SDK does not declare.

    Declared so :func:`configure_flink` can set it; the job server takes it like any
    runner option given on the command line.
    """

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--finish_bundle_before_checkpointing",
            action="store_true",
            default=None,
            help="Flink: finish each bundle before its checkpoint barrier goes downstream "
            "(always on for streams, see pipeline/flink.py)",
        )


def job_server_dir(cache: Path | None = None, beam_version: str = BEAM_VERSION) -> Path:
    """Where the job server of this Beam version is (or will be) laid out."""
    root = cache or DEFAULT_CACHE
    return root / f"wirenews-flink-{FLINK_VERSION}-job-server-{beam_version}"


def ensure_job_server_jar(cache: Path | None = None, beam_version: str = BEAM_VERSION) -> Path:
    """The job-server launcher jar, fetched with Maven into the cache if it is not there yet.

    Raises:
        WirenewsError: Maven is missing or could not resolve the jars.
    """
    folder = job_server_dir(cache, beam_version)
    jar = folder / "job-server.jar"
    if (folder / _COMPLETE).exists() and jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if not mvn:
        message = (
            "the Flink job server is not in the cache and Maven (mvn) is not installed: "
            "install Maven and run `make flink`, or pass --flink_job_server_jar=PATH"
        )
        raise WirenewsError(message)
    LOGGER.info(
        "fetching the Beam %s Flink %s job server into %s", beam_version, FLINK_VERSION, folder
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (staging / "pom.xml").write_text(_POM.format(flink=FLINK_VERSION, beam=beam_version))
        fetched = subprocess.run(  # noqa: S603 - mvn from PATH, arguments of our own
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(staging / "pom.xml"),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging / 'lib'}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fetched.returncode != 0:
            tail = "\n".join((fetched.stdout + fetched.stderr).strip().splitlines()[-5:])
            message = f"Maven could not fetch the Flink job server for Beam {beam_version}:\n{tail}"
            raise WirenewsError(message)
        _write_launcher(staging / "job-server.jar", sorted((staging / "lib").glob("*.jar")))
        (staging / _COMPLETE).touch()
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return jar


def _write_launcher(path: Path, jars: list[Path]) -> None:
    """A jar holding only a manifest: the job server's main class and its classpath."""
    relative = [f"lib/{jar.name}" for jar in jars]
    manifest = (
        "Manifest-Version: 1.0\n"
        f"Main-Class: {MAIN_CLASS}\n"
        # One entry a continuation line: manifest lines must stay short.
        "Class-Path: " + "\n  ".join(relative) + "\n"
    )
    with zipfile.ZipFile(path, "w") as launcher:
        launcher.writestr("META-INF/MANIFEST.MF", manifest)


def configure_flink(options: PipelineOptions) -> None:
    """Fill in what a Flink run needs and a user should not have to say.

    - workers in this process (LOOPBACK) for an embedded Flink (``[local]``): no Docker;
      and then, for a batch job, a parallelism of 1 unless ``--parallelism`` says otherwise;
    - the job server from the cache (fetched on first use) unless ``--flink_job_server_jar``;
    - Java 17 ``--add-opens`` flags for the job server's JVM;
    - for a stream, ``--finish_bundle_before_checkpointing``. Without it Beam's Flink
      operator finishes a bundle still open at a checkpoint after the barrier went
      downstream, so it keeps that bundle's outputs in its state and sends them only
      when its next bundle starts. A stage that gets no more input keeps them for
      good: the impulse stage that hands the Kafka reader its one element (the
      stream then reads nothing), or a dedup collector's last decisions on a quiet
      topic (their articles are never written).
    """
    flink = options.view_as(FlinkRunnerOptions)
    portable = options.view_as(PortableOptions)
    if flink.flink_master in _LOCAL_MASTERS and not portable.environment_type:
        portable.environment_type = "LOOPBACK"
    batch = not options.view_as(StandardOptions).streaming
    if batch and portable.environment_type == "LOOPBACK" and flink.parallelism in (None, -1):
        # Every LOOPBACK worker is a thread of this one Python process: more Flink
        # subtasks only add hand-offs (the seeds job: 19 s at 1, 60 s at 2 here).
        # Not for streams: at 1, the Kafka reader's stage never handed records on.
        flink.parallelism = 1
    if not flink.flink_job_server_jar and not portable.job_endpoint:
        cache = options.view_as(JobServerOptions).jar_cache_dir
        flink.flink_job_server_jar = str(ensure_job_server_jar(Path(cache) if cache else None))
    if not batch:
        options.view_as(FlinkCheckpointOptions).finish_bundle_before_checkpointing = True
    server = options.view_as(JobServerOptions)
    given = list(server.job_server_jvm_properties or [])
    server.job_server_jvm_properties = given + [f for f in JAVA_17_FLAGS if f not in given]


def flink_rest_url(options: PipelineOptions) -> str | None:
    """The REST API of the Flink cluster a job runs on: ``--flink-rest``, or a remote master.

    None for an embedded Flink and for runners that are not Flink's.
    """
    given = options.view_as(WirenewsOptions).flink_rest
    master = options.view_as(FlinkRunnerOptions).flink_master
    runner = runner_kind(options)
    if given and runner not in {"flink", "portable"}:
        return None  # Prism, Dataflow...: no Flink job to cancel
    if not given and (runner != "flink" or master in _LOCAL_MASTERS):
        return None
    url = (given or master).rstrip("/")
    return url if url.startswith(("http://", "https://")) else f"http://{url}"


def name_job(options: PipelineOptions) -> str:
    """The job's name on its runner: ``--job_name``, else a new ``wirenews-`` one."""
    cloud = options.view_as(GoogleCloudOptions)
    cloud.job_name = cloud.job_name or f"wirenews-{uuid.uuid4().hex[:12]}"
    return cloud.job_name


# Flink's job states after which there is nothing to cancel.
_ENDED = {"FINISHED", "CANCELED", "CANCELLING", "FAILED", "SUSPENDED"}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def flink_jobs(rest_url: str, timeout: float = 10.0) -> dict[str, tuple[str, str]]:
    """Every job the Flink cluster knows: its id → (name, state).

    Raises:
        OSError: Flink's REST API did not answer.
        ValueError: what answered is not Flink's REST API.
    """
    try:
        with _NO_PROXY.open(f"{rest_url}/jobs/overview", timeout=timeout) as answer:
            jobs = json.loads(answer.read())["jobs"]
        return {job["jid"]: (job["name"], job["state"]) for job in jobs}
    except (http.client.HTTPException, KeyError, TypeError) as exc:
        message = f"{rest_url} is not Flink's REST API ({type(exc).__name__})"
        raise ValueError(message) from exc


def cancel_on_cluster(
    rest_url: str, job_name: str, *, spare: Collection[str] = (), patience: float = 10.0
) -> list[str]:
    """Cancel this run's job on the Flink cluster, found by name; the ids cancelled.

    Beam's Flink job server cancels its own invocation of a job but not the job it
    submitted to a cluster: a stream stopped through it went on running there,
    reading its topic and committing the group's offsets. Jobs in ``spare`` (those
    of that name before this run) are left alone; a job not there yet (a stream
    stopped while it started) is waited for up to ``patience`` seconds.

    Raises:
        OSError: Flink's REST API did not answer.
        ValueError: what answered is not Flink's REST API.
        http.client.HTTPException: the cancel request met something else than Flink.
    """
    deadline = time.monotonic() + patience
    while True:
        running = [
            jid
            for jid, (name, state) in flink_jobs(rest_url).items()
            if name == job_name and state not in _ENDED and jid not in spare
        ]
        if running or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    for jid in running:
        cancel = f"{rest_url}/jobs/{jid}?mode=cancel"  # the user's own --flink-rest/--flink_master
        request = urllib.request.Request(cancel, method="PATCH")  # noqa: S310
        with _NO_PROXY.open(request, timeout=10.0):
            pass
    return running


def main(argv: list[str] | None = None) -> int:
    """``python -m pipeline.flink``: fetch the job server into the cache, print its jar."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"default: {DEFAULT_CACHE}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        jar = ensure_job_server_jar(args.cache)
    except WirenewsError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - a CLI
        return 1
    print(jar)  # noqa: T201 - a CLI
    return 0


if __name__ == "__main__":
    sys.exit(main())
