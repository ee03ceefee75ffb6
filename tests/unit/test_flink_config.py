"""What ``configure_flink`` adds to a Flink job's options (no job server needed)."""

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.flink import FlinkCheckpointOptions, configure_flink

# A job endpoint, so that configuring never looks for the job server's jar.
ENDPOINT = "--job_endpoint=localhost:1"


def _configured(*flags: str) -> PipelineOptions:
    options = PipelineOptions(["--runner=FlinkRunner", ENDPOINT, *flags])
    configure_flink(options)
    return options


def test_a_stream_finishes_its_bundles_before_each_checkpoint() -> None:
    """Otherwise a stage that gets no more input keeps what it output at a checkpoint."""
    options = _configured("--streaming", "--checkpointing_interval=2000")
    assert options.view_as(FlinkCheckpointOptions).finish_bundle_before_checkpointing is True
    sent = options.get_all_options(retain_unknown_options=True)
    assert sent["finish_bundle_before_checkpointing"] is True
    assert sent["checkpointing_interval"] == "2000"


def test_a_batch_job_is_left_as_flink_runs_it() -> None:
    options = _configured()
    assert options.view_as(FlinkCheckpointOptions).finish_bundle_before_checkpointing is None
