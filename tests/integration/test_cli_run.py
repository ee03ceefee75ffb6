"""The ``wirenews`` command end to end, as a user runs it, output read back independently."""

import contextlib
import importlib.metadata
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import fastavro
import pytest

from tests.conftest import (
    EXPECTED_BAD,
    EXPECTED_GOOD_FROM_BAD,
    REPO,
    SEED_PAGE,
    WIRENEWS,
    article_json,
    printed_is,
    read_avro,
    read_with_apache_avro,
    read_with_avrocat,
    run_wirenews,
    story_body,
    summary_counts,
    write_bad_inputs,
)
from tests.integration.chaos import group_members, start_as_a_terminal_would

GOLDEN = REPO / "tests" / "data" / "seeds_golden.jsonl"
# Fields that depend on when and where the job ran.
VOLATILE = {"ingested_at", "origin"}


@pytest.fixture(scope="module")
def seeds_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("out")
    done = run_wirenews("run", "--source", "seeds/", "--output", str(out))
    assert done.returncode == 0, done.stderr
    return done, out


@pytest.fixture(scope="module")
def bad_run(
    tmp_path_factory: pytest.TempPathFactory, seed_page: bytes
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """Every kind of bad input, and a 4 MB record over a 3 MB limit, run once."""
    folder = write_bad_inputs(tmp_path_factory.mktemp("in") / "bad", seed_page)
    (folder / "oversized.jsonl").write_bytes(b'{"body": "' + b"word " * 800_000 + b'"}\n')
    out = tmp_path_factory.mktemp("out")
    done = run_wirenews(
        "run", "--source", str(folder), "--output", str(out), "--max-record-bytes", "3000000"
    )
    assert done.returncode == 0, done.stderr
    return done, folder, out


def comparable(record: dict) -> dict:
    record = {k: v for k, v in record.items() if k not in VOLATILE}
    record["origin_file"] = Path(record.get("origin_file") or "").name
    if record["published_at"] is not None:
        record["published_at"] = record["published_at"].isoformat()
    return record


SEEDS_COUNTS = {"read": 15, "articles": 13, "duplicates": 2, "dead_letters": 0}
SEEDS_DUPLICATES = {
    "463979e4565bed70": ("nw-2024-1126-001", "near"),
    "dbp-20241125-7731": ("nw-2024-1125-001", "exact"),
}


def articles_as_golden(out: Path) -> list[dict]:
    """The articles written, as the golden file keeps them (no run-time fields), in its order.

    By file, then id: runners write a file's several articles in different orders.
    """
    articles = []
    for article in read_avro(out, "articles"):
        article["origin_file"] = article["origin"]["path"]
        articles.append(comparable(article))
    return sorted(articles, key=lambda a: (a["origin_file"], a["id"]))


def golden_articles() -> list[dict]:
    return [json.loads(line) for line in GOLDEN.read_text().splitlines()]


def duplicates_written(out: Path) -> dict[str, tuple[str, str]]:
    """Each duplicate written: its id → its original's id and how it was found."""
    return {d["id"]: (d["duplicate_of"], d["method"]) for d in read_avro(out, "duplicates")}


def check_seeds_output(stdout: str, out: Path) -> None:
    """A seeds run's summary, articles and duplicates: the golden run's, on any runner."""
    assert summary_counts(stdout) == SEEDS_COUNTS
    assert articles_as_golden(out) == golden_articles()
    assert duplicates_written(out) == SEEDS_DUPLICATES


def test_seeds_become_articles_readable_by_two_implementations(seeds_run) -> None:
    done, out = seeds_run
    articles = read_avro(out, "articles")
    duplicates = read_avro(out, "duplicates")
    assert summary_counts(done.stdout) == {
        "read": 15,
        "articles": 13,
        "duplicates": 2,
        "dead_letters": 0,
    }
    assert len(articles) == 13
    assert read_avro(out, "dead_letters") == []
    assert read_with_apache_avro(out, "articles") == articles
    assert [a["id"] for a in read_with_avrocat(out, "articles")] == [a["id"] for a in articles]
    seeds = sorted(p.name for p in (REPO / "seeds").iterdir())
    assert {Path(r["origin"]["path"]).name for r in articles + duplicates} == set(seeds)
    assert all(a["origin"]["kind"] == "file" and a["ingested_at"].tzinfo for a in articles)


def test_seed_page_fields(seeds_run) -> None:
    _, out = seeds_run
    [page] = [
        a
        for a in read_avro(out, "articles")
        if a["origin"]["path"].endswith("000_109866a445957986.txt")
    ]
    assert page["headline"] == (
        "NATO leader sidesteps discussion on Ukraine’s membership, "
        "emphasizing support for Kyiv’s defense efforts."
    )
    assert page["dateline"] == "BRUSSELS"
    assert page["body"].startswith("On Tuesday, NATO Secretary-General Mark Rutte")
    assert "Home World Live" not in page["body"]
    assert "\n\n0\n\n" not in page["body"]
    assert page["language"] == "en"


def test_seeds_match_the_golden_output(seeds_run) -> None:
    """Every field of every seed article, against a reviewed copy in tests/data."""
    _, out = seeds_run
    articles = articles_as_golden(out)
    if os.environ.get("WIRENEWS_UPDATE_GOLDEN"):
        GOLDEN.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles))
        pytest.fail(f"{GOLDEN.name} rewritten from this run: review its diff, then run again")
    assert articles == golden_articles()


def test_no_temporary_files_are_left_behind(seeds_run) -> None:
    _, out = seeds_run
    assert sorted(p.name for p in out.iterdir()) == [
        "articles-00000-of-00001.avro",
        "dead_letters-00000-of-00001.avro",
        "duplicates-00000-of-00001.avro",
    ]


def test_bad_input_never_stops_the_run_and_nothing_is_lost(bad_run) -> None:
    done, folder, out = bad_run
    counts = summary_counts(done.stdout)
    articles = read_avro(out, "articles")
    duplicates = read_avro(out, "duplicates")
    letters = read_avro(out, "dead_letters")
    assert counts["read"] == counts["articles"] + counts["duplicates"] + counts["dead_letters"]
    assert (counts["articles"], counts["duplicates"], counts["dead_letters"]) == (
        len(articles),
        len(duplicates),
        len(letters),
    )
    assert {a["id"] for a in articles + duplicates} == EXPECTED_GOOD_FROM_BAD
    by_place = {}
    for letter in letters:
        name = Path(letter["origin"]["path"]).name
        by_place[f"{name}:{letter['origin']['line']}" if letter["origin"]["line"] else name] = (
            letter
        )
    assert {k: v["error_type"] for k, v in by_place.items()} == {
        **EXPECTED_BAD,
        "oversized.jsonl:1": "RecordTooLarge",
    }
    assert all(letter["error_message"] for letter in letters)
    assert by_place["broken.json"]["payload"] == (folder / "broken.json").read_bytes()
    oversized = by_place["oversized.jsonl:1"]
    assert oversized["payload_size"] == 4_000_012
    assert len(oversized["payload"]) == 65536
    assert oversized["stage"] == "read"


def test_a_rerun_replaces_the_output_of_the_earlier_run(tmp_path: Path, seeds_dir: Path) -> None:
    out = tmp_path / "out"
    first = run_wirenews(
        "run",
        "--source",
        str(seeds_dir),
        "--output",
        str(out),
        "--direct_num_workers=2",
        "--direct_running_mode=multi_threading",
    )
    assert first.returncode == 0, first.stderr
    single = tmp_path / "single"
    single.mkdir()
    (single / "one.txt").write_bytes((seeds_dir / "000_109866a445957986.txt").read_bytes())
    second = run_wirenews("run", "--source", str(single), "--output", str(out))
    assert second.returncode == 0, second.stderr
    assert len(read_avro(out, "articles")) == 1


def test_usage_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = run_wirenews("run", "--output", str(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == "wirenews run: --source is required"
    mistakes = {
        ("--source", str(tmp_path / "nope")): f"{str(tmp_path / 'nope')!r} does not exist",
        ("--source", str(tmp_path)): "no article files (.txt, .json, .jsonl, optionally .gz) in",
        ("--ouptut", "elsewhere"): "unknown flag --ouptut: did you mean --output?",
        ("--window", "abc"): "argument --window: expected a whole number, got 'abc'",
        ("--runner", "nosuch"): "Unexpected pipeline runner: nosuch. Valid values are",
        ("--output", str(SEED_PAGE)): f"--output {SEED_PAGE} is a file",
        ("--start", "latest"): "--start is for a Kafka source",
    }
    for flags, said in mistakes.items():
        job = {"--source": "seeds/", "--output": str(tmp_path / "out")}
        job.update([flags])
        done = run_wirenews("run", *(part for flag in job.items() for part in flag))
        assert done.returncode == 2, (flags, done.stderr)
        assert said in done.stderr.strip().splitlines()[-1], (flags, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_job_its_runner_fails_says_why_in_a_line_and_where_with_v(tmp_path: Path) -> None:
    """An output folder that cannot be made fails the job on its runner, not the command line."""
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder\n")
    output = str(in_the_way / "out")
    failed = run_wirenews("run", "--source", "seeds/", "--output", output)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert failed.stderr.strip().splitlines()[-2].startswith("wirenews run: the job failed: ")
    assert f"Not a directory: '{output}'" in failed.stderr
    assert "Traceback" not in failed.stderr
    told = run_wirenews("-v", "run", "--source", "seeds/", "--output", output)
    assert told.returncode == 1
    assert "Traceback" in told.stderr
    assert "wirenews run: the job failed: " in told.stderr


def test_a_job_service_that_never_answers_is_named(tmp_path: Path) -> None:
    unanswered = run_wirenews(
        "run", "--source", "seeds/", "--output", str(tmp_path / "out"), "--runner=PortableRunner",
        "--job_endpoint=127.0.0.1:9", "--job_server_timeout=2",
    )  # fmt: skip
    assert unanswered.returncode == 1
    assert unanswered.stderr.strip().splitlines()[-2] == (
        "wirenews run: no job service answered at 127.0.0.1:9 within 2 s (--job_endpoint)"
    )


def test_help_lists_the_options() -> None:
    shown = run_wirenews("run", "--help")
    assert shown.returncode == 0
    for flag in ("--source", "--output", "--max-record-bytes"):
        assert flag in shown.stdout
    version = importlib.metadata.version("wirenews")
    assert run_wirenews("--version").stdout.strip() == f"wirenews {version}"
    bare = run_wirenews()
    assert bare.returncode == 2
    assert "{run,feed,read}" in bare.stdout


def test_read_prints_exactly_the_records_written(seeds_run) -> None:
    _, out = seeds_run
    # A folder is read file by file in name order: articles, dead letters, duplicates.
    written = (
        read_avro(out, "articles") + read_avro(out, "dead_letters") + read_avro(out, "duplicates")
    )
    lines = run_wirenews("read", str(out))
    assert lines.returncode == 0, lines.stderr
    printed = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(printed) == len(written)
    assert all(map(printed_is, printed, written))
    table = run_wirenews("read", str(out), "--format", "table").stdout.splitlines()
    assert table[0].split()[:4] == ["id", "published", "source", "headline"]
    assert [row.split()[0] for row in table[1:]] == [r["id"] for r in written]
    assert run_wirenews("read", str(out), "--count").stdout.strip() == str(len(written))
    assert run_wirenews("read", "-v", str(out), "--count").stdout.strip() == str(len(written))
    names = {"io.wirenews.Article", "io.wirenews.DeadLetter", "io.wirenews.Duplicate"}
    schemas = json.loads(
        "[" + run_wirenews("read", str(out), "--schema").stdout.replace("}\n{", "},{") + "]"
    )
    assert {s["name"] for s in schemas} == names


def test_read_shows_dead_letters_with_their_reasons(bad_run, tmp_path: Path) -> None:
    _, _, out = bad_run
    table = run_wirenews("read", str(out / "dead_letters-*.avro"), "--format", "table")
    rows = table.stdout.splitlines()
    assert rows[0].split()[:3] == ["origin", "stage", "error"]
    assert len(rows) == 1 + len(EXPECTED_BAD) + 1  # and the oversized record
    assert any("oversized.jsonl" in row and "RecordTooLarge" in row for row in rows)
    assert any("broken.json" in row and "MalformedJson" in row for row in rows)
    written = read_avro(out, "dead_letters")
    lines = run_wirenews("read", str(out / "dead_letters-*.avro")).stdout.splitlines()
    assert len(lines) == len(written)
    assert all(map(printed_is, map(json.loads, lines), written))  # raw bytes in base64
    missing = run_wirenews("read", str(tmp_path / "nothing-here"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"wirenews read: {str(tmp_path / 'nothing-here')!r} does not exist"
    )


def test_read_goes_on_past_files_it_cannot_read(seeds_run, tmp_path: Path) -> None:
    _, out = seeds_run
    folder = tmp_path / "mixed"
    shutil.copytree(out, folder)
    (folder / "notes.avro").write_text("not Avro\n")
    articles = (out / "articles-00000-of-00001.avro").read_bytes()
    (folder / "cut.avro").write_bytes(articles[: len(articles) - 100])
    before_the_cut = 0
    with contextlib.suppress(EOFError):
        for _ in fastavro.reader(io.BytesIO(articles[: len(articles) - 100])):
            before_the_cut += 1
    counted = run_wirenews("read", str(folder), "--count")
    assert counted.returncode == 1
    # Every record of the whole files, and those before the cut.
    assert counted.stdout.strip() == str(SEEDS_COUNTS["read"] + before_the_cut)
    said = counted.stderr.strip().splitlines()
    assert any(
        "cannot read" in line and "notes.avro: not an Avro container file" in line for line in said
    )
    assert any("cut.avro: it ends in the middle of a record" in line for line in said)
    assert said[-1] == (
        "wirenews read: 2 of the files could not be read to their end: "
        f"{folder / 'cut.avro'}, {folder / 'notes.avro'}"
    )
    assert "Traceback" not in counted.stderr
    # A file named on its own is read whatever its name.
    (tmp_path / "articles.bin").write_bytes(articles)
    named = run_wirenews("read", str(tmp_path / "articles.bin"), "--count")
    assert named.stdout.strip() == str(SEEDS_COUNTS["articles"])


def test_seed_copies_are_found_and_the_follow_up_is_not(seeds_run) -> None:
    _, out = seeds_run
    duplicates = {d["id"]: d for d in read_avro(out, "duplicates")}
    republished = "463979e4565bed70"  # the Baltic Morning Post page of nw-2024-1126-001
    assert set(duplicates) == {republished, "dbp-20241125-7731"}
    assert duplicates["dbp-20241125-7731"]["duplicate_of"] == "nw-2024-1125-001"
    assert duplicates["dbp-20241125-7731"]["method"] == "exact"
    assert duplicates[republished]["duplicate_of"] == "nw-2024-1126-001"
    assert duplicates[republished]["method"] == "near"
    articles = {a["id"]: a for a in read_avro(out, "articles")}
    assert articles["nw-2024-1127-001"]["dedup"]["duplicate_of"] is None  # the next-day follow-up
    assert all(a["dedup"]["cluster_id"] == a["id"] for a in articles.values())


def test_seed_page_quotes_are_exactly_the_issues_list(seeds_run) -> None:
    _, out = seeds_run
    [page] = [a for a in read_avro(out, "articles") if a["headline"].startswith("NATO leader")]
    quoted = [(q["text"], q["speaker"]) for q in page["quotes"] if q["kind"] != "indirect"]
    ministry = "Ukrainian Foreign Ministry"
    assert quoted == [
        (
            "The front lines are not shifting eastward; they are gradually moving westward,",
            "Mark Rutte",
        ),
        (
            "I propose we refrain from premature discussions regarding what a peace process "
            "might entail.",
            "Mark Rutte",
        ),
        (
            "will not settle for alternatives, substitutes, or surrogates for full membership "
            "in NATO,",
            ministry,
        ),
        ("bitter experience of the Budapest Memorandum.", ministry),
        ("monument to short-sightedness in making strategic security decisions.", ministry),
        (
            "Any agreement regarding Ukraine must be of high quality because we cannot risk the "
            "scenario of leaders like Kim Jong Un and Xi Jinping feeling emboldened,",
            "Mark Rutte",
        ),
    ]
    body = page["body"]
    assert all(body[q["start"] : q["end"]] == q["text"] for q in page["quotes"])
    assert {q["speaker_label"] for q in page["quotes"] if q["speaker"] == ministry} == {"ORG"}
    indirect = [(q["speaker"], q["cue"]) for q in page["quotes"] if q["kind"] == "indirect"]
    assert ("Volodymyr Zelenskyy", "stated") in indirect


def test_seeds_on_prism_named_by_the_user_give_the_direct_runners_records(tmp_path: Path) -> None:
    """--runner=PrismRunner runs on this machine's Prism: Beam's would download one from GitHub."""
    out = tmp_path / "out"
    done = run_wirenews("run", "--source", "seeds/", "--output", str(out), "--runner=PrismRunner")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "running on Prism" in done.stderr
    check_seeds_output(done.stdout, out)


@pytest.mark.parametrize("runner", [(), ("--runner=PrismRunner",)], ids=["direct", "prism"])
def test_ctrl_c_stops_a_batch_job_at_once_and_says_so(tmp_path: Path, runner: tuple) -> None:
    """Not "the job failed" (Beam's worker met the KeyboardInterrupt first), nor tracebacks."""
    corpus = tmp_path / "articles.jsonl"
    corpus.write_bytes(b"".join(article_json(id=f"c-{n}", body=story_body(f"c-{n}")) + b"\n"
                                for n in range(1500)))  # fmt: skip
    log = tmp_path / "job.log"
    with log.open("wb") as sink:
        job = start_as_a_terminal_would(
            [str(WIRENEWS), "run", "--source", str(corpus), "--output", str(tmp_path / "out"),
             *runner],
            cwd=REPO, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "running on" not in log.read_text() and time.monotonic() < deadline:
            assert job.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(4)  # into its bundles
        os.killpg(job.pid, signal.SIGINT)
        assert job.wait(timeout=60) == 130, log.read_text()[-3000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    text = log.read_text()
    assert "wirenews run: stopped at once" in text
    for noise in ("Traceback", "failed", "panic", "ERROR"):
        assert noise not in text, text[-3000:]
    deadline = time.monotonic() + 15
    while group_members(job.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(job.pid) == [], "the runner outlived the job"
