"""Reading article files as a Beam step: list once on the driver, read on the workers.

Example:
    outputs = pipeline | "ReadArticleFiles" >> ReadArticleFiles("seeds/")
    outputs[ReadArticleFiles.RECORDS], outputs[ReadArticleFiles.DEAD_LETTERS]
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from pipeline.io.files import list_source, read_file
from transforms.metrics import StepMetrics
from transforms.parse import DEFAULT_MAX_RECORD_BYTES
from transforms.records import DeadLetter, RawRecord

__all__ = ["ReadArticleFiles"]


class _ReadFileFn(beam.DoFn):
    def __init__(self, max_record_bytes: int) -> None:
        self._max_record_bytes = max_record_bytes

    def setup(self) -> None:
        self._metrics = StepMetrics("read")

    def process(self, path: str) -> Iterator[RawRecord | beam.pvalue.TaggedOutput]:
        for item in read_file(path, self._max_record_bytes):
            self._metrics.received()
            if isinstance(item, DeadLetter):
                self._metrics.dead_lettered()
                yield beam.pvalue.TaggedOutput(ReadArticleFiles.DEAD_LETTERS, item)
            else:
                self._metrics.ok()
                yield item


class ReadArticleFiles(beam.PTransform):
    """``PBegin`` → ``{"records": RawRecord, "dead_letters": DeadLetter}`` from files."""

    RECORDS = "records"
    DEAD_LETTERS = "dead_letters"

    def __init__(self, source: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        super().__init__()
        listed = list_source(source)
        self._paths = [path for path, _size in listed]
        # What the runner sizes its workers by (pipeline.runner.use_every_core).
        self.input_bytes = sum(size for _path, size in listed)
        self._max_record_bytes = max_record_bytes

    def expand(self, begin: beam.pvalue.PBegin) -> beam.pvalue.DoOutputsTuple:
        """List the files once, spread them over workers, read each."""
        return (
            begin
            | "ListFiles" >> beam.Create(self._paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles"
            >> beam.ParDo(_ReadFileFn(self._max_record_bytes)).with_outputs(
                self.DEAD_LETTERS, main=self.RECORDS
            )
        )
