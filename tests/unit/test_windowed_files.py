from pathlib import Path

import fastavro
from apache_beam.transforms.window import IntervalWindow

from pipeline.io.windowed_files import source_key, window_file_name, write_atomically
from transforms.records import Origin


def test_file_names_hold_window_source_and_first_offset() -> None:
    window = IntervalWindow(1_732_613_400, 1_732_613_460)
    name = window_file_name("articles", window, "wire.news/3", 42)
    assert name == "articles-20241126T093000Z-20241126T093100Z-wire.news_3-000000000042.avro"
    assert source_key(Origin.kafka("wire", 3, 7)) == "wire/3"
    assert source_key(Origin.file("/in/a.jsonl", 2)) == "/in/a.jsonl"


def test_write_atomically_leaves_only_the_final_file(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    target = tmp_path / "sub" / "articles-x.avro"
    write_atomically(str(target), fastavro.parse_schema(schema), [{"n": 1}, {"n": 2}])
    write_atomically(str(target), fastavro.parse_schema(schema), [{"n": 3}])  # a replay rewrites
    assert [p.name for p in target.parent.iterdir()] == ["articles-x.avro"]
    with target.open("rb") as file:
        assert [r["n"] for r in fastavro.reader(file)] == [3]
