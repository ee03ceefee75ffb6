"""Choosing the runner for a job.

``--runner`` unset (or ``DirectRunner``) on a batch job runs on Beam's FnApiRunner,
the engine the DirectRunner itself uses for batch, chosen directly: the
DirectRunner would first try to download Prism from GitHub, which an offline
machine cannot do and a pipeline should not do behind its user's back. Any other
``--runner`` is Beam's to resolve.

Example:
    pipeline = beam.Pipeline(runner=choose_runner(options), options=options)
"""

from __future__ import annotations

import logging

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner

__all__ = ["choose_runner"]

LOGGER = logging.getLogger(__name__)
_DIRECT = {None, "DirectRunner", "direct", "SwitchingDirectRunner"}


def choose_runner(options: PipelineOptions) -> PipelineRunner | None:
    """The runner to pass to ``beam.Pipeline``; None lets Beam resolve ``--runner``."""
    standard = options.view_as(StandardOptions)
    if standard.runner not in _DIRECT or standard.streaming:
        return None
    LOGGER.debug("running on the DirectRunner's batch engine (FnApiRunner)")
    # Workers read the pipeline options from the provision info, as under the DirectRunner.
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return fn_runner.FnApiRunner(provision_info=provision)
