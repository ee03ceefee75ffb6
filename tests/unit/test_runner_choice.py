"""Which runner a job gets, and how it is spread over this machine's cores (pipeline.runner)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    DirectOptions,
    PipelineOptions,
    PrismRunnerOptions,
)
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

from pipeline.io.file_source import ReadArticleFiles
from pipeline.io.kafka_client import is_kafka_url
from pipeline.job_server import LocalFlinkRunner, LocalPrismRunner
from pipeline.options import WirenewsOptions, parse_options, runner_kind
from pipeline.runner import (
    _worker_processes_end_quietly_on_sigint,
    choose_runner,
    find_prism,
    offload_nlp,
    use_every_core,
)
from transforms.errors import WirenewsError


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)


def workers(*flags: str) -> tuple[int, str]:
    """The workers a batch job gets, sized by what its read lists, as ``wirenews run`` does."""
    options = parse_options(["--output", "out/", *flags])
    runner = choose_runner(options)
    assert isinstance(runner, FnApiRunner)
    source = options.view_as(WirenewsOptions).source
    input_bytes = None if is_kafka_url(source) else ReadArticleFiles(source).input_bytes
    use_every_core(runner, options, input_bytes)
    direct = options.view_as(DirectOptions)
    return direct.direct_num_workers, direct.direct_running_mode


def corpus(folder: Path, size: int) -> Path:
    (folder / "articles.jsonl").write_bytes(b'{"body": "x"}\n' * (size // 14 + 1))
    return folder


@pytest.mark.usefixtures("two_cores")
def test_a_big_batch_gets_a_worker_process_per_core(tmp_path: Path) -> None:
    assert workers("--source", str(corpus(tmp_path, 2_000_000))) == (2, "multi_processing")


@pytest.mark.usefixtures("two_cores")
def test_a_small_batch_stays_in_this_process(tmp_path: Path) -> None:
    assert workers("--source", str(corpus(tmp_path, 20_000))) == (1, "in_memory")


@pytest.mark.usefixtures("two_cores")
def test_the_users_choice_of_workers_wins(tmp_path: Path) -> None:
    source = str(corpus(tmp_path, 2_000_000))
    assert workers("--source", source, "--direct_num_workers=1") == (1, "in_memory")
    assert workers("--source", source, "--direct_running_mode=multi_threading") == (
        1,
        "multi_threading",
    )


@pytest.mark.usefixtures("two_cores")
def test_a_bounded_kafka_run_keeps_beams_default() -> None:
    assert workers("--source", "kafka://127.0.0.1:9/wire", "--until-end") == (1, "in_memory")


def test_one_core_means_one_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert workers("--source", str(corpus(tmp_path, 2_000_000))) == (1, "in_memory")


def nlp_processes(*flags: str) -> int:
    """Helper processes for spaCy, as ``wirenews run`` chooses them for its runner."""
    options = parse_options(["--source", "in/", "--output", "out/", *flags])
    offload_nlp(choose_runner(options), options)
    return options.view_as(WirenewsOptions).nlp_processes


@pytest.mark.usefixtures("two_cores")
def test_a_stream_on_prism_runs_spacy_beside_its_one_worker_process() -> None:
    assert nlp_processes("--streaming") == 1
    assert nlp_processes("--streaming", "--nlp-processes", "0") == 0
    assert nlp_processes("--streaming", "--nlp-processes=3") == 3


def test_every_core_but_the_workers_own_goes_to_spacy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert nlp_processes("--streaming") == 7
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert nlp_processes("--streaming") == 0


@pytest.mark.usefixtures("two_cores")
def test_a_batch_job_has_a_worker_process_per_core_instead() -> None:
    assert nlp_processes() == 0
    assert nlp_processes("--nlp-processes", "2") == 2


@pytest.mark.parametrize(
    ("runner", "kind"),
    [
        (None, "direct"),
        ("DirectRunner", "direct"),
        ("FlinkRunner", "flink"),
        ("flink", "flink"),
        ("flinkrunner", "flink"),
        ("apache_beam.runners.portability.prism_runner.PrismRunner", "prism"),
        ("prism", "prism"),
        ("DataflowRunner", "dataflow"),
        ("my.own.PrismRunner", "my.own.PrismRunner"),  # the user's class, Beam's to load
    ],
)
def test_a_runner_is_known_by_every_name_beam_takes_for_it(runner: str | None, kind: str) -> None:
    flags = [f"--runner={runner}"] if runner else []
    assert runner_kind(PipelineOptions(flags)) == kind


def chosen(*flags: str) -> object:
    return choose_runner(parse_options(["--source", "in/", "--output", "out/", *flags]))


@pytest.mark.parametrize("name", ["DirectRunner", "directrunner", "SwitchingDirectRunner"])
def test_the_direct_runner_by_any_name_is_the_batch_engine_or_prism(name: str) -> None:
    assert isinstance(chosen(f"--runner={name}"), FnApiRunner)
    assert isinstance(chosen(f"--runner={name}", "--streaming"), LocalPrismRunner)


@pytest.mark.parametrize(
    "flags",
    [
        ("--runner=BundleBasedDirectRunner",),
        ("--runner=PortableRunner", "--job_endpoint=js:1"),
        ("--runner=DataflowRunner",),
        ("--runner=my.own.PrismRunner",),
    ],
)
def test_other_runners_are_beams_to_resolve(flags: tuple[str, ...]) -> None:
    assert chosen(*flags) is None


@pytest.mark.usefixtures("two_cores")
@pytest.mark.parametrize("name", ["PrismRunner", "prism"])
def test_prism_named_by_the_user_is_the_local_one_for_batch_jobs_too(name: str) -> None:
    """Beam's own would download Prism from GitHub and let Prism split dedup's bundles."""
    options = parse_options(["--source", "in/", "--output", "out/", f"--runner={name}"])
    assert isinstance(choose_runner(options), LocalPrismRunner)
    assert options.view_as(PrismRunnerOptions).prism_location == find_prism()
    assert "prism_disable_sdf_split" in options.view_as(DebugOptions).experiments
    assert nlp_processes(f"--runner={name}") == 1  # its worker is this process, as for streams


def test_a_prism_of_the_users_choosing_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their binary, or a Prism already running at --job_endpoint (then none is needed here)."""
    flags = ["--runner=PrismRunner", "--prism_location=/opt/prism"]
    options = parse_options(["--source", "in/", "--output", "out/", *flags])
    choose_runner(options)
    assert options.view_as(PrismRunnerOptions).prism_location == "/opt/prism"
    monkeypatch.setattr("pipeline.runner.find_prism", lambda: None)
    assert isinstance(chosen("--runner=PrismRunner", "--job_endpoint=prism:8073"), LocalPrismRunner)
    with pytest.raises(WirenewsError, match="make prism"):
        chosen("--runner=PrismRunner")


def lists_its_environment(*flags: str) -> bool:
    """Whether Beam would ``pip freeze`` this environment for the job's workers."""
    options = parse_options(["--source", "in/", "--output", "out/", *flags])
    choose_runner(options)
    experiment = "disable_logging_submission_environment"
    return not options.view_as(DebugOptions).lookup_experiment(experiment)


def test_only_workers_elsewhere_get_this_environments_listing() -> None:
    assert not lists_its_environment("--streaming")
    assert not lists_its_environment("--runner=PrismRunner")
    assert not lists_its_environment("--runner=FlinkRunner", "--job_endpoint=js:1")
    assert lists_its_environment("--runner=PrismRunner", "--environment_type=EXTERNAL")
    assert lists_its_environment(
        "--runner=FlinkRunner", "--flink_master=jm:8081", "--job_endpoint=js:1"
    )


@pytest.mark.usefixtures("two_cores")
def test_workers_outside_this_process_need_no_spacy_helpers() -> None:
    assert nlp_processes("--runner=PrismRunner", "--environment_type=EXTERNAL") == 0
    assert (
        nlp_processes("--runner=FlinkRunner", "--flink_master=jm:8081", "--job_endpoint=js:1") == 0
    )
    assert (
        nlp_processes("--runner=FlinkRunner", "--flink_master=[local]", "--job_endpoint=js:1") == 1
    )


def test_flink_named_in_lower_case_is_still_the_local_flink() -> None:
    assert isinstance(chosen("--runner=flinkrunner", "--job_endpoint=js:1"), LocalFlinkRunner)


def test_beams_own_worker_processes_end_quietly_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C ends each worker with no traceback of its own, and ends it."""
    registered = worker_handlers.WorkerHandler._registered_environments
    given: list[bytes] = []
    monkeypatch.setitem(
        registered, python_urns.SUBPROCESS_SDK, (lambda line, *_: given.append(line), bytes)
    )
    _worker_processes_end_quietly_on_sigint()
    _worker_processes_end_quietly_on_sigint()  # installed once
    start, _ = registered[python_urns.SUBPROCESS_SDK]
    start(f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main".encode(), "state")
    start(b"FOO=1 some-other-worker", "state")
    assert given[1] == b"FOO=1 some-other-worker"
    # What Beam then runs (in a shell, as it does), with a stand-in for its worker's module:
    # the worker runs as __main__, and a SIGINT ends it at once and silently.
    (tmp_path / "stand_in.py").write_text(
        "import os, signal, sys, time\n"
        "if __name__ == '__main__':\n"
        "    print('running', flush=True)\n"
        "    time.sleep(30)\n"
    )
    command = given[0].decode().replace("apache_beam.runners.worker.sdk_worker_main", "stand_in")
    worker = subprocess.Popen(
        ["sh", "-c", command], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(tmp_path)}, start_new_session=True,
    )  # fmt: skip
    assert worker.stdout is not None
    assert worker.stdout.readline() == b"running\n"
    os.killpg(worker.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    _, err = worker.communicate(timeout=10)
    assert b"Traceback" not in err
    assert worker.returncode != 0
