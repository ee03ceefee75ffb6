"""Fixtures shared by every tier of tests."""

from __future__ import annotations

import base64
import gzip
import json
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import avro.datafile
import avro.io
import fastavro
import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SEED_PAGE = SEEDS / "000_109866a445957986.txt"
WIRENEWS = Path(sys.executable).with_name("wirenews")


_SUMMARY = re.compile(
    r"^(?P<state>[A-Z]+): read (?P<read>[\d,]+) records: (?P<articles>[\d,]+) articles, "
    r"(?P<duplicates>[\d,]+) duplicates, (?P<dead_letters>[\d,]+) dead letters, in "
)


def summary_counts(stdout: str) -> dict[str, int]:
    """The counts of a run's summary line (its last line of output)."""
    line = stdout.strip().splitlines()[-1]
    found = _SUMMARY.match(line)
    assert found, line
    assert found["state"] == "DONE", line
    return {k: int(v.replace(",", "")) for k, v in found.groupdict().items() if k != "state"}


def run_wirenews(
    *args: str, timeout: float = 600, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``wirenews`` command as a user would."""
    return subprocess.run(
        [str(WIRENEWS), *args],
        cwd=REPO,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def printed_is(printed: object, value: object) -> bool:
    """Whether ``wirenews read``'s JSON for a record field holds ``value``, decoded by hand.

    Bytes must come back from base64 and times from ISO 8601 (with their zone), as a
    user's ``jq '.payload | @base64d'`` or ``fromisoformat`` would take them.
    """
    if isinstance(value, dict):
        return (
            isinstance(printed, dict)
            and printed.keys() == value.keys()
            and all(printed_is(printed[key], item) for key, item in value.items())
        )
    if isinstance(value, list):
        return (
            isinstance(printed, list)
            and len(printed) == len(value)
            and all(map(printed_is, printed, value))
        )
    if isinstance(value, bytes):
        return isinstance(printed, str) and base64.b64decode(printed, validate=True) == value
    if isinstance(value, datetime):
        return isinstance(printed, str) and datetime.fromisoformat(printed) == value
    return printed == value


def read_avro(folder: Path, prefix: str) -> list[dict]:
    """Every record of the ``<prefix>-*.avro`` files in ``folder``, read with plain fastavro."""
    records = []
    for path in sorted(folder.glob(f"{prefix}-*.avro")):
        with path.open("rb") as file:
            records.extend(fastavro.reader(file))
    return records


def read_with_apache_avro(folder: Path, prefix: str) -> list[dict]:
    """The same, read with Apache's own ``avro`` package."""
    records = []
    for path in sorted(folder.glob(f"{prefix}-*.avro")):
        with (
            path.open("rb") as file,
            avro.datafile.DataFileReader(file, avro.io.DatumReader()) as reader,
        ):
            records.extend(reader)
    return records


def read_with_avrocat(folder: Path, prefix: str) -> list[dict]:
    """The same, read by the C implementation's ``avrocat`` (Debian's avro-bin), in Avro's JSON."""
    avrocat = shutil.which("avrocat")
    assert avrocat, "avrocat is not installed: `make test` installs it (Debian package avro-bin)"
    records = []
    for path in sorted(folder.glob(f"{prefix}-*.avro")):
        shown = subprocess.run([avrocat, str(path)], capture_output=True, text=True, check=True)
        records.extend(json.loads(line) for line in shown.stdout.splitlines())
    return records


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS


@pytest.fixture(scope="session")
def seed_page() -> bytes:
    return SEED_PAGE.read_bytes()


_VOCABULARY = [
    "harbour",
    "port",
    "ministers",
    "budget",
    "council",
    "river",
    "bridge",
    "election",
    "court",
    "ruling",
    "grain",
    "exports",
    "wind",
    "farm",
    "pension",
    "reform",
    "strike",
    "union",
    "talks",
    "border",
    "treaty",
    "drought",
    "floods",
    "railway",
    "tunnel",
    "hospital",
    "nurses",
    "vaccine",
    "trial",
    "bank",
    "rates",
    "inflation",
    "currency",
    "bonds",
    "shares",
    "airline",
    "fuel",
    "tariff",
    "steel",
    "factory",
    "jobs",
    "coast",
    "storm",
    "ferry",
    "fishing",
    "quota",
    "summit",
    "envoy",
    "ceasefire",
    "aid",
    "refugees",
    "camp",
    "school",
    "teachers",
    "museum",
    "festival",
    "stadium",
    "league",
    "coach",
    "transfer",
    "record",
]


def story_body(seed: str) -> str:
    """A body of its own for every seed: distinct stories, not near-duplicates of one another."""
    chooser = random.Random(seed)
    paragraphs = [
        " ".join(chooser.choice(_VOCABULARY) for _ in range(40)).capitalize() + "."
        for _ in range(3)
    ]
    return "LONDON — Ministers agreed on Tuesday to a plan for the harbour.\n\n" + "\n\n".join(
        paragraphs
    )


_FRENCH = (
    "le ministre a déclaré mardi que les marchés de Paris et de Lyon ont reculé après "
    "la décision de la banque centrale sur les taux"
)


def large_french_article(article_id: str, size: int) -> bytes:
    """A JSON article with a body of ``size`` characters or more, in French: no NLP runs on it."""
    chooser = random.Random(article_id)
    words = _FRENCH.split()
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < size:
        paragraphs.append(" ".join(chooser.choice(words) for _ in range(60)).capitalize() + ".")
    return article_json(id=article_id, headline="Un grand article", body="\n\n".join(paragraphs))


def article_json(**fields: object) -> bytes:
    """A JSON article with sensible defaults; articles with different ids tell different stories."""
    article_id = fields.get("id", "t-1")
    document = {
        "id": article_id,
        "url": f"https://example.test/{article_id}",
        "source": "Test Wire",
        "published_at": "2024-11-26T09:30:00Z",
        "headline": "Ministers agree on a plan",
        "body": story_body(str(article_id)),
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def write_bad_inputs(folder: Path, seed_page: bytes) -> Path:
    """Fill ``folder`` with every kind of bad input the pipeline must survive.

    The expected error type of each file is in ``EXPECTED_BAD``.
    """
    folder.mkdir(exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "random.txt").write_bytes(bytes(range(256)) * 8)
    (folder / "controls.txt").write_bytes(bytes(range(1, 32)) * 40)
    middle = len(seed_page) // 2
    (folder / "invalid_utf8.txt").write_bytes(seed_page[:middle] + b"\xff\xfe" + seed_page[middle:])
    (folder / "broken.json").write_bytes(b'{"id": "x", "body": "unterminated')
    (folder / "no_body.json").write_bytes(article_json(body=...))
    (folder / "empty_body.json").write_bytes(article_json(body="   \n "))
    (folder / "only_boilerplate.txt").write_bytes(
        b"Share\n\nAdvertisement\n\nRead more\n\n12\n\n"
        b"\xc2\xa9 2024 Example News. All rights reserved.\n"
    )
    (folder / "corrupt.json.gz").write_bytes(gzip.compress(article_json())[:40])
    (folder / "lines.jsonl").write_bytes(
        article_json(id="ok-1") + b"\n" + b"[1, 2]\n" + b"\n" + article_json(id="ok-2") + b"\n"
    )
    # ~270 KB: several of the NLP step's 50,000-character pieces, and seconds, not a minute,
    # of NER (the 50 MB refusals are tested in test_garbage_kafka).
    huge_body = "\n\n".join(
        f"Paragraph {n} of a very long feature about the harbour and its ministers." * 12
        for n in range(300)
    )
    (folder / "huge.json").write_bytes(article_json(id="huge", body=huge_body))
    return folder


@pytest.fixture
def bad_inputs(tmp_path: Path, seed_page: bytes) -> Callable[[], Path]:
    """A builder of the bad-input folder, so tests can add their own files first."""
    return lambda: write_bad_inputs(tmp_path / "bad", seed_page)


# file name (and line) → error type of its dead letter; None: becomes an article.
EXPECTED_BAD = {
    "empty.txt": "EmptyArticle",
    "random.txt": "InvalidEncoding",
    "controls.txt": "BinaryContent",
    "invalid_utf8.txt": "InvalidEncoding",
    "broken.json": "MalformedJson",
    "no_body.json": "MissingField",
    "empty_body.json": "EmptyArticle",
    "only_boilerplate.txt": "EmptyArticle",
    "corrupt.json.gz": "InvalidEncoding",
    "lines.jsonl:2": "MalformedJson",
}
EXPECTED_GOOD_FROM_BAD = {"ok-1", "ok-2", "huge"}
