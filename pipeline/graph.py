"""The pipeline graph: read → parse → write, each input ending in exactly one output.

Example:
    outputs = build_outputs(pipeline, options)   # PCollections, for tests
    build(pipeline, options)                     # the same, written to --output
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.io.avro import WriteAvro
from pipeline.io.files import ReadArticleFiles
from pipeline.options import WirenewsOptions
from transforms.parse import ParseArticles

__all__ = ["ARTICLES_PREFIX", "DEAD_LETTERS_PREFIX", "JobOutputs", "build", "build_outputs"]

ARTICLES_PREFIX = "articles"
DEAD_LETTERS_PREFIX = "dead_letters"


class JobOutputs(NamedTuple):
    """The pipeline's outputs; every input record ends in exactly one of them."""

    articles: beam.PCollection
    dead_letters: beam.PCollection


def build_outputs(pipeline: beam.Pipeline, options: PipelineOptions) -> JobOutputs:
    """Add the reading and processing steps to ``pipeline``."""
    wirenews = options.view_as(WirenewsOptions)
    read = pipeline | "ReadArticles" >> ReadArticleFiles(wirenews.source, wirenews.max_record_bytes)
    parsed = read[ReadArticleFiles.RECORDS] | "ParseArticles" >> ParseArticles(
        wirenews.max_record_bytes
    )
    dead_letters = (
        read[ReadArticleFiles.DEAD_LETTERS],
        parsed[ParseArticles.DEAD_LETTERS],
    ) | "CollectDeadLetters" >> beam.Flatten()
    return JobOutputs(articles=parsed[ParseArticles.ARTICLES], dead_letters=dead_letters)


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> JobOutputs:
    """Add the whole job to ``pipeline``, writing its outputs under ``--output``."""
    output = options.view_as(WirenewsOptions).output
    outputs = build_outputs(pipeline, options)
    outputs.articles | "WriteArticles" >> WriteAvro(
        FileSystems.join(output, ARTICLES_PREFIX), "Article", counter="write_articles"
    )
    outputs.dead_letters | "WriteDeadLetters" >> WriteAvro(
        FileSystems.join(output, DEAD_LETTERS_PREFIX), "DeadLetter", counter="write_dead_letters"
    )
    return outputs
