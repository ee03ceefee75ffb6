"""Writing records as Avro container files, in batch.

Beam's file sink writes each shard under a temporary name and renames it when
complete, so no partial file ever appears under a final name.

Example:
    articles | "WriteArticles" >> WriteAvro(f"{out}/articles", "Article", counter="write_articles")
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io.avroio import WriteToAvro

from pipeline.io.avro import AVRO_CODEC, AVRO_SUFFIX, to_avro
from schemas import load_schema
from transforms.metrics import StepMetrics

__all__ = ["WriteAvro"]


class _ToAvroFn(beam.DoFn):
    def __init__(self, schema_name: str, step: str) -> None:
        self._schema_name = schema_name
        self._step = step

    def setup(self) -> None:
        self._schema = load_schema(self._schema_name)
        self._metrics = StepMetrics(self._step)

    def process(self, record: Any) -> Any:
        self._metrics.received()
        datum = to_avro(record, self._schema)
        self._metrics.ok()
        yield datum


class WriteAvro(beam.PTransform):
    """Write records of one schema to ``<prefix>-SSSSS-of-NNNNN.avro`` files.

    Counts what it writes under ``write_<name>.ok`` so the run's summary can
    report it.
    """

    def __init__(self, prefix: str, schema_name: str, counter: str) -> None:
        super().__init__()
        self._prefix = prefix
        self._schema_name = schema_name
        self._counter = counter
        self._schema = load_schema(schema_name)  # fail at construction if it is missing

    def expand(self, records: beam.PCollection) -> beam.pvalue.PDone:
        """Validate and convert each record, then write the files."""
        return (
            records
            | "ToAvro" >> beam.ParDo(_ToAvroFn(self._schema_name, self._counter))
            | "WriteFiles"
            >> WriteToAvro(
                self._prefix, self._schema, codec=AVRO_CODEC, file_name_suffix=AVRO_SUFFIX
            )
        )
