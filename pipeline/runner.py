"""Choosing the runner for a job.

``--runner`` unset (or ``DirectRunner``):

- a batch job runs on Beam's FnApiRunner, the engine the DirectRunner itself uses
  for batch, chosen directly: the DirectRunner would first try to download Prism
  from GitHub, which an offline machine cannot do and a pipeline should not do
  behind its user's back;
- a streaming job runs on Prism, Beam's local portable runner, from a binary on
  this machine (``--prism_location``, ``$WIRENEWS_PRISM``, ``.bin/prism`` in the
  repository, or ``prism`` on the PATH); ``make prism`` builds it offline.

Any other ``--runner`` is Beam's to resolve.

Example:
    pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from apache_beam.options.pipeline_options import (
    DebugOptions,
    PipelineOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.portability.prism_runner import PrismRunner
from apache_beam.runners.runner import PipelineRunner

from transforms.errors import WirenewsError

__all__ = ["choose_runner", "find_prism"]

LOGGER = logging.getLogger(__name__)
_DIRECT = {None, "DirectRunner", "direct", "SwitchingDirectRunner"}
_REPO_PRISM = Path(__file__).resolve().parent.parent / ".bin" / "prism"


def find_prism() -> str | None:
    """A Prism binary on this machine, if there is one."""
    candidates = [os.environ.get("WIRENEWS_PRISM"), str(_REPO_PRISM), shutil.which("prism")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def choose_runner(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to pass to ``beam.Pipeline``; None lets Beam resolve ``--runner``.

    Raises:
        WirenewsError: a streaming job and no Prism binary to run it on.
    """
    standard = options.view_as(StandardOptions)
    if standard.runner not in _DIRECT:
        return None
    if standard.streaming:
        prism = options.view_as(PrismRunnerOptions)
        prism.prism_location = prism.prism_location or find_prism()
        if not prism.prism_location:
            message = (
                "streaming runs need Prism, Beam's local runner: build it with `make prism` "
                "(go install, offline), or pass --prism_location=PATH"
            )
            raise WirenewsError(message)
        _no_runner_splits(options)
        LOGGER.info("streaming on Prism (%s)", prism.prism_location)
        return PrismRunner()
    LOGGER.debug("running on the DirectRunner's batch engine (FnApiRunner)")
    # Workers read the pipeline options from the provision info, as under the DirectRunner.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return fn_runner.FnApiRunner(provision_info=provision)


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
