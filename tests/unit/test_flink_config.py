"""What ``configure_flink`` adds to a Flink job's options (no job server needed)."""

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.flink import FlinkCheckpointOptions, configure_flink, flink_rest_url, name_job

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


def test_where_a_stopped_stream_is_cancelled_on_a_flink_cluster() -> None:
    """A remote master is the cluster; --flink-rest names it for the portable runner."""

    def rest(*flags: str) -> str | None:
        return flink_rest_url(PipelineOptions(list(flags)))

    assert rest("--runner=FlinkRunner", "--flink_master=jm:8081") == "http://jm:8081"
    assert rest("--runner=FlinkRunner", "--flink_master=https://jm:8081/") == "https://jm:8081"
    assert rest("--runner=FlinkRunner", "--flink_master=[local]") is None
    assert rest("--runner=FlinkRunner") is None
    assert rest("--runner=PortableRunner", "--job_endpoint=js:8099") is None
    assert rest("--runner=PortableRunner", "--flink-rest=http://jm:8081") == "http://jm:8081"
    assert rest("--runner=PrismRunner", "--flink_master=jm:8081") is None
    assert rest("--runner=PrismRunner", "--flink-rest=http://jm:8081") is None  # no Flink job


def test_a_job_is_named_once_so_the_cluster_can_find_it() -> None:
    options = PipelineOptions([])
    name = name_job(options)
    assert name.startswith("wirenews-")
    assert name_job(options) == name
    assert name_job(PipelineOptions(["--job_name=mine"])) == "mine"
    assert name_job(PipelineOptions([])) != name
