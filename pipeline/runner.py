"""Choosing the runner for a job.

``--runner`` unset (or ``DirectRunner``):

- a batch job runs on Beam's FnApiRunner, the engine the DirectRunner itself uses
  for batch, chosen directly: the DirectRunner would first try to download Prism
  from GitHub, which an offline machine cannot do and a pipeline should not do
  behind its user's back;
- a streaming job runs on Prism, Beam's local portable runner, from a binary on
  this machine (``--prism_location``, ``$WIRENEWS_PRISM``, ``.bin/prism`` in the
  repository, or ``prism`` on the PATH); ``make prism`` builds it offline.

``--runner=PrismRunner``: any job on that same Prism. Beam's own PrismRunner would
download Prism from GitHub, serve its web UI, and let Prism split the bundles that
streaming dedup's timers need whole.

``--runner=FlinkRunner``: an embedded Flink (``--flink_master=[local]``, the
default) runs the SDK workers in this process (LOOPBACK), and the job server
comes from a local cache, fetched from Maven Central on first use
(:mod:`pipeline.flink`), started with the Java 17 flags Flink needs.

Prism and Flink's job server are started so that Ctrl-C stops the job rather
than them (:mod:`pipeline.job_server`).

Any other ``--runner`` is Beam's to resolve.

Example:
    pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    PipelineOptions,
    PortableOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner
from apache_beam.runners.worker import sdk_worker
from apache_beam.runners.worker.worker_id_interceptor import WorkerIdInterceptor

from pipeline.flink import configure_flink
from pipeline.job_server import LocalFlinkRunner, LocalPrismRunner
from pipeline.options import WirenewsOptions, runner_kind
from transforms.errors import WirenewsError

__all__ = ["choose_runner", "find_prism", "offload_nlp", "use_every_core"]

LOGGER = logging.getLogger(__name__)
_DIRECT = {"direct", "switchingdirect"}  # as runner_kind names them
_REPO_PRISM = Path(__file__).resolve().parent.parent / ".bin" / "prism"
# A worker process takes ~3 s to start (Beam, then the spaCy model); below about this
# much input (~200 articles) one in-process worker finishes first.
_ONE_WORKER_BELOW_BYTES = 512 * 1024
_WORKER_FLAGS = ("--direct_num_workers", "--direct_running_mode")


def find_prism() -> str | None:
    """A Prism binary on this machine, if there is one."""
    candidates = [os.environ.get("WIRENEWS_PRISM"), str(_REPO_PRISM), shutil.which("prism")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def choose_runner(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to pass to ``beam.Pipeline``; None lets Beam resolve ``--runner``.

    Raises:
        WirenewsError: a streaming or Prism job and no Prism binary to run it on, or a Flink
            job and no way to fetch its job server.
    """
    runner = _portable_runner(options)
    if runner is not None and _workers_in_this_process(runner, options):
        _no_environment_listing(options)
    if runner is not None or runner_kind(options) not in _DIRECT:
        return runner
    LOGGER.info("running on the DirectRunner's batch engine (FnApiRunner)")
    _worker_processes_end_quietly_on_sigint()
    # Workers read the pipeline options from the provision info, as under the DirectRunner.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return fn_runner.FnApiRunner(provision_info=provision)


def _portable_runner(options: PipelineOptions) -> LocalFlinkRunner | LocalPrismRunner | None:
    """Flink or Prism, set up to run from this machine; None for any other runner."""
    kind = runner_kind(options)
    if kind == "flink":
        configure_flink(options)
        return LocalFlinkRunner()
    if kind == "prism" or (kind in _DIRECT and options.view_as(StandardOptions).streaming):
        _no_runner_splits(options)
        _name_workers_on_state_channel()
        endpoint = options.view_as(PortableOptions).job_endpoint
        if endpoint:  # a Prism already running: no binary needed here
            LOGGER.info("running on the Prism at %s", endpoint)
            return LocalPrismRunner()
        prism = options.view_as(PrismRunnerOptions)
        prism.prism_location = prism.prism_location or find_prism()
        if not prism.prism_location:
            message = (
                "streaming runs and --runner=PrismRunner need Prism, Beam's local runner: "
                "build it with `make prism` (go install, offline), or pass --prism_location=PATH"
            )
            raise WirenewsError(message)
        LOGGER.info("running on Prism (%s)", prism.prism_location)
        return LocalPrismRunner()
    return None


def _workers_in_this_process(runner: PipelineRunner | None, options: PipelineOptions) -> bool:
    """Whether the runner's SDK workers are threads of this process (LOOPBACK)."""
    environment = options.view_as(PortableOptions).environment_type
    return (  # Prism's workers default to LOOPBACK; Flink's (elsewhere) to Docker
        isinstance(runner, LocalPrismRunner) and environment in (None, "LOOPBACK")
    ) or (isinstance(runner, LocalFlinkRunner) and environment == "LOOPBACK")


def _no_environment_listing(options: PipelineOptions) -> None:
    """Skip Beam's ``pip freeze`` of this environment at every submission.

    Beam stages it for remote workers to compare with their own; workers in this
    process run in it. It cost ~0.7 s a start, and a Ctrl-C landing in it printed
    pip's traceback.
    """
    debug = options.view_as(DebugOptions)
    if not debug.lookup_experiment("disable_logging_submission_environment"):
        debug.add_experiment("disable_logging_submission_environment")


def use_every_core(
    runner: PipelineRunner | None, options: PipelineOptions, input_bytes: int | None
) -> None:
    """A batch job on the FnApiRunner over enough input gets one worker process per core.

    Beam's default is one worker in this process: half of a two-core machine. The
    user's own ``--direct_num_workers``/``--direct_running_mode`` always win; an
    input of unknown size (a bounded Kafka run) keeps Beam's default. Called once
    the job is built, with the size of the files its read listed.
    """
    if not isinstance(runner, fn_runner.FnApiRunner) or input_bytes is None:
        return
    flags = options._flags or []  # noqa: SLF001 - what the user passed, not the defaults
    cores = os.cpu_count() or 1
    chosen = any(flag.startswith(_WORKER_FLAGS) for flag in flags)
    if cores <= 1 or chosen or input_bytes < _ONE_WORKER_BELOW_BYTES:
        return
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = cores
    direct.direct_running_mode = "multi_processing"
    LOGGER.info("%d worker processes, one per core (--direct_num_workers to choose)", cores)


def offload_nlp(runner: PipelineRunner | None, options: PipelineOptions) -> None:
    """Where every step of a job shares this one Python process, spaCy gets processes of its own.

    Prism and an embedded Flink run their SDK worker in this process (LOOPBACK), so
    the NLP, the streaming dedup and the Fn API traffic take turns on one core: a
    stream kept up with ~6 articles a second on two cores, one of them mostly idle.
    The user's own ``--nlp-processes`` wins; other runners start a worker per core.
    """
    wirenews = options.view_as(WirenewsOptions)
    if wirenews.nlp_processes is not None:
        return
    in_this_process = _workers_in_this_process(runner, options)
    wirenews.nlp_processes = max((os.cpu_count() or 1) - 1, 0) if in_this_process else 0
    if wirenews.nlp_processes:
        LOGGER.info(
            "spaCy in %d helper process(es) (--nlp-processes to choose)", wirenews.nlp_processes
        )


def _no_runner_splits(options: PipelineOptions) -> None:
    """Ask Prism not to split running bundles.

    Prism splits any bundle that looks slow, and splitting one that carries timers
    drops its watermark holds and re-runs its timers (apache/beam#35771): the
    streaming dedup then emits an article twice or waits for ever. Our Kafka
    reader returns by itself every few seconds, so nothing needs the runner to
    split it.
    """
    debug = options.view_as(DebugOptions)
    if "prism_disable_sdf_split" not in (debug.experiments or []):
        debug.add_experiment("prism_disable_sdf_split")


_SDK_WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"
# Beam's worker, started by an interpreter that leaves SIGINT to the system.
_QUIET_ON_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    f"runpy.run_module('{_SDK_WORKER_MAIN}', run_name='__main__', alter_sys=True)"
)


def _worker_processes_end_quietly_on_sigint() -> None:
    """Let Ctrl-C end the FnApiRunner's worker processes without a traceback each.

    A terminal's Ctrl-C reaches the whole process group, and each worker process
    died of it printing its own KeyboardInterrupt traceback while the job was
    stopping anyway. With SIGINT at the system's default, a worker ends at once and
    says nothing. It must still end: this process, stopping, waits for its workers
    (ignoring SIGINT instead left a stopped job waiting for ever now and then).
    """
    registered = worker_handlers.WorkerHandler._registered_environments  # noqa: SLF001
    handler, payload_type = registered[python_urns.SUBPROCESS_SDK]
    if getattr(handler, "_wirenews_quiet_on_sigint", False):
        return
    beams_own = f"{sys.executable} -m {_SDK_WORKER_MAIN}".encode()

    def quiet_on_sigint(command_line: bytes, *args: Any) -> worker_handlers.WorkerHandler:
        if command_line == beams_own:  # any other command is left as it was given
            command_line = f'{sys.executable} -c "{_QUIET_ON_SIGINT}"'.encode()
        return handler(command_line, *args)

    quiet_on_sigint._wirenews_quiet_on_sigint = True  # type: ignore[attr-defined]  # noqa: SLF001
    registered[python_urns.SUBPROCESS_SDK] = quiet_on_sigint, payload_type


def _name_workers_on_state_channel() -> None:
    """Make in-process SDK workers send their id on the state channel, as Prism 2.77 requires.

    Beam 2.62's SDK harness sends on its state channel the worker id it reads from
    ``$WORKER_ID`` at import, unset for LOOPBACK workers in this process; Prism
    2.77 refuses every state request without one, which stops any stateful step
    (dedup, the offset ledger). Each harness started here stamps its own id on
    the class default instead; a LOOPBACK Prism job has one worker per process.
    Harmless where the SDK passes the id itself (newer Beam).
    """
    if getattr(sdk_worker.SdkHarness, "_wirenews_named", False):
        return
    original = sdk_worker.SdkHarness.__init__

    @functools.wraps(original)
    def named(self: sdk_worker.SdkHarness, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        WorkerIdInterceptor._worker_id = kwargs.get("worker_id") or WorkerIdInterceptor._worker_id  # noqa: SLF001

    sdk_worker.SdkHarness.__init__ = named
    sdk_worker.SdkHarness._wirenews_named = True  # noqa: SLF001
