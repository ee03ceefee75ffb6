"""`wirenews run`'s flags: a mistaken one is refused, naming the one meant (pipeline.options)."""

import logging

import pytest

from pipeline.options import check_flags, parse_options
from transforms.errors import WirenewsError

JOB = ["--source", "seeds/", "--output", "out/"]


def check(*flags: str) -> None:
    given = [*JOB, *flags]
    check_flags(given, parse_options(given))


@pytest.mark.parametrize(
    ("flag", "meant"),
    [
        ("--ouptut", "--output"),  # a typo
        ("--duplicate", "--duplicates"),  # an abbreviation, which Beam would take
        ("--nlp", "--nlp-processes"),  # a short one
        ("--model", "--spacy-model"),  # part of the name
        ("--direct_num_worker", "--direct_num_workers"),  # Beam's own
    ],
)
def test_a_mistaken_flag_names_the_one_meant(flag: str, meant: str) -> None:
    with pytest.raises(WirenewsError, match=f"unknown flag {flag}: did you mean {meant}"):
        check(f"{flag}=x")


def test_the_local_runners_take_no_flag_beyond_beams() -> None:
    for runner in ("DirectRunner", "PrismRunner"):
        with pytest.raises(WirenewsError, match="unknown flag --checkpointing_interval"):
            check(f"--runner={runner}", "--checkpointing_interval=1000")


def test_a_remote_runners_own_flags_pass_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.options"):
        check("--runner=FlinkRunner", "--checkpointing_interval=1000")
    assert "passing --checkpointing_interval on to the runner" in caplog.text
    with pytest.raises(WirenewsError, match="did you mean --schema-registry"):  # still ours
        check("--runner=FlinkRunner", "--sch=http://registry")


def test_every_flag_of_the_job_and_of_beam_passes() -> None:
    check(
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode",
        "multi_processing",
        "--dedup-horizon",
        "1h",
        "--max_record_bytes=1000",
        "--project",
        "p",
    )
