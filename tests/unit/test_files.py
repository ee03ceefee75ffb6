import gzip
import subprocess
import sys
from pathlib import Path

import fastavro
import pytest
from apache_beam.io.filesystems import FileSystems

from pipeline.io.files import expand_source, file_format, list_source, read_file
from pipeline.io.paths import is_local, match_files
from tests.conftest import article_json
from transforms.errors import WirenewsError
from transforms.records import DeadLetter, MediaType, Origin, RawRecord


def records(path: Path, limit: int = 10_000_000) -> list[RawRecord | DeadLetter]:
    return list(read_file(str(path), limit))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", ("txt", False)),
        ("a.JSON", ("json", False)),
        ("a.jsonl.gz", ("jsonl", True)),
        ("a.txt.gz", ("txt", True)),
        ("a.md", None),
        ("a.gz", None),
    ],
)
def test_file_format(name: str, expected: tuple[str, bool] | None) -> None:
    assert file_format(name) == expected


def test_every_format_plain_and_gzipped(tmp_path: Path, seed_page: bytes) -> None:
    lines = article_json(id="a") + b"\n\n" + article_json(id="b") + b"\n"
    files = {
        "page.txt": seed_page,
        "one.json": article_json(),
        "many.jsonl": lines,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(content))
    for suffix in ("", ".gz"):
        page = records(tmp_path / f"page.txt{suffix}")
        assert page == [
            RawRecord(seed_page, Origin.file(str(tmp_path / f"page.txt{suffix}")), MediaType.TEXT)
        ]
        one = records(tmp_path / f"one.json{suffix}")
        assert [r.payload for r in one] == [article_json()]
        many = records(tmp_path / f"many.jsonl{suffix}")
        assert [r.payload for r in many] == [article_json(id="a"), article_json(id="b")]
        assert [r.origin.line for r in many] == [1, 3]  # the blank line 2 is not a record
        assert all(r.media_type is MediaType.JSON for r in one + many)


def test_oversized_records_are_refused_without_reading_them_whole(tmp_path: Path) -> None:
    big = b"x" * 5000
    (tmp_path / "big.txt").write_bytes(big)
    (tmp_path / "big.txt.gz").write_bytes(gzip.compress(big))
    (tmp_path / "mixed.jsonl").write_bytes(
        b'{"body": "fine"}\n' + big + b"\n" + b'{"body": "also fine"}\n'
    )
    for name in ("big.txt", "big.txt.gz"):
        [letter] = records(tmp_path / name, limit=1000)
        assert isinstance(letter, DeadLetter)
        assert letter.error_type == "RecordTooLarge"
        assert "5,000 bytes, over the limit of 1,000" in letter.error_message
        assert letter.payload_size == 5000
        assert len(letter.payload) <= 1001
        assert letter.stage == "read"
    first, letter, last = records(tmp_path / "mixed.jsonl", limit=1000)
    assert (first.payload, last.payload) == (b'{"body": "fine"}', b'{"body": "also fine"}')
    assert isinstance(letter, DeadLetter)
    assert letter.origin == Origin.file(str(tmp_path / "mixed.jsonl"), line=2)
    assert letter.payload_size == 5000


def test_a_line_exactly_at_the_limit_is_read(tmp_path: Path) -> None:
    (tmp_path / "edge.jsonl").write_bytes(b"a" * 100 + b"\n" + b"b" * 100)
    assert [r.payload for r in records(tmp_path / "edge.jsonl", limit=100)] == [
        b"a" * 100,
        b"b" * 100,
    ]


def test_corrupt_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    lines = b"".join(article_json(id=str(n)) + b"\n" for n in range(2000))
    stored = gzip.compress(lines)[:-200]
    (tmp_path / "cut.jsonl.gz").write_bytes(stored)
    found = records(tmp_path / "cut.jsonl.gz")
    letters = [r for r in found if isinstance(r, DeadLetter)]
    assert len(letters) == 1
    assert letters[0].error_type == "InvalidEncoding"
    assert "corrupt gzip" in letters[0].error_message
    assert len(found) > 1000
    # The letter keeps the file as stored: its first 64 KiB, and its whole size.
    assert letters[0].payload == stored[: 64 * 1024]
    assert letters[0].payload_size == len(stored)


def test_a_small_corrupt_gzip_file_is_kept_whole(tmp_path: Path) -> None:
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8bnot gz")
    [letter] = records(tmp_path / "bad.txt.gz")
    assert isinstance(letter, DeadLetter)
    assert (letter.payload, letter.payload_size) == (b"\x1f\x8bnot gz", 8)


def test_unreadable_file_is_a_dead_letter(tmp_path: Path) -> None:
    [letter] = records(tmp_path / "vanished.json")
    assert isinstance(letter, DeadLetter)
    assert letter.error_type == "UnreadableInput"


def test_expand_folder_recursively_and_skip_other_types(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.txt", "sub/b.json", "sub/deeper/c.jsonl.gz", "notes.md", "sub/.DS_Store"):
        (tmp_path / name).write_bytes(b"x")
    expected = [str(tmp_path / n) for n in ("a.txt", "sub/b.json", "sub/deeper/c.jsonl.gz")]
    assert expand_source(str(tmp_path)) == expected
    assert expand_source(str(tmp_path / "**" / "*.json")) == [str(tmp_path / "sub/b.json")]
    assert expand_source(str(tmp_path / "a.txt")) == [str(tmp_path / "a.txt")]


def test_expand_refuses_nothing_and_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_bytes(b"x")
    with pytest.raises(WirenewsError, match="no article files"):
        expand_source(str(tmp_path / "missing" / "*.json"))
    with pytest.raises(WirenewsError, match="is not an article file"):
        expand_source(str(tmp_path / "notes.md"))


def test_expand_relative_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert expand_source(".") == [str(tmp_path / "a.txt")]


@pytest.mark.parametrize(
    "path",
    [
        "s3://bucket/wire/",
        "GS://bucket/a.jsonl",
        "hdfs+ha://cluster/x",
        " gs://bucket/padded",
        "azfs://account/container/blob",
        "/var/wire/a.jsonl",
        "relative/s3:/not-a-url",
        "C:/wire",
    ],
)
def test_remote_paths_are_told_from_local_ones_as_beam_tells_them(path: str) -> None:
    assert is_local(path) == (FileSystems.get_scheme(path) is None)


def test_a_folder_lists_as_beam_lists_it(tmp_path: Path) -> None:
    """Local folders are walked without Beam; Beam's own listing must agree, sizes too."""
    for name, size in (("a.txt", 3), ("sub/b.json", 5), ("sub/deeper/c.jsonl.gz", 8), ("x.md", 1)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    (tmp_path / "link.txt").symlink_to(tmp_path / "sub" / "b.json")
    (tmp_path / "broken.txt").symlink_to(tmp_path / "gone.txt")
    beam = FileSystems.match([FileSystems.join(str(tmp_path), "**")])[0].metadata_list
    expected = {m.path: m.size_in_bytes for m in beam}
    assert match_files(str(tmp_path), folder=True) == expected
    assert len(expected) == 5
    articles = sorted((path, size) for path, size in expected.items() if file_format(path))
    assert list_source(str(tmp_path)) == list_source(str(tmp_path) + "/") == articles


def test_feeding_and_reading_never_import_beam(tmp_path: Path) -> None:
    """`wirenews feed` and `wirenews read` run without Beam: its import alone took 0.5 s."""
    schema = {"type": "record", "name": "One", "fields": [{"name": "n", "type": "int"}]}
    with (tmp_path / "articles-00000-of-00001.avro").open("wb") as out:
        fastavro.writer(out, schema, [{"n": 1}])
    code = (
        "import sys, pipeline.cli, pipeline.feed\n"
        f"for argv in (['feed', '--help'], ['read', {str(tmp_path)!r}, '--count']):\n"
        "    try:\n"
        "        pipeline.cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "sys.exit('apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1"  # read counted the record: it ran
