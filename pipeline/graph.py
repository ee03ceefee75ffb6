"""The pipeline graph: read → parse → write, each input ending in exactly one output.

Batch jobs (a folder, or a Kafka topic read ``--until-end``) write sharded Avro
files once at the end; streaming jobs (a Kafka topic) write a file per window
and source partition, and commit the consumer group's offsets as files land.

Example:
    outputs = build_outputs(pipeline, options)   # PCollections, for tests
    build(pipeline, options)                     # the same, written to --output
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.io.avro_sink import WriteAvro
from pipeline.io.file_source import ReadArticleFiles
from pipeline.io.kafka_client import (
    KafkaSettings,
    KafkaTopic,
    commit_offsets,
    ensure_topics,
    is_kafka_url,
    parse_start,
)
from pipeline.io.kafka_commit import CommitOffsets
from pipeline.io.kafka_read import RANGES, RECORDS, ReadFromKafka
from pipeline.io.kafka_write import WriteKafkaAvro
from pipeline.io.windowed_files import WriteWindowedAvro
from pipeline.options import WirenewsOptions
from transforms.annotate import AnnotateArticles
from transforms.dedup import DeduplicateArticles, DeduplicateStream
from transforms.parse_step import ParseArticles

__all__ = [
    "ARTICLES_PREFIX",
    "DEAD_LETTERS_PREFIX",
    "DUPLICATES_PREFIX",
    "OUTPUT_PREFIXES",
    "JobOutputs",
    "adds_to_output",
    "build",
    "build_outputs",
    "dead_letter_target",
    "is_streaming",
]

ARTICLES_PREFIX = "articles"
DUPLICATES_PREFIX = "duplicates"
DEAD_LETTERS_PREFIX = "dead_letters"
OUTPUT_PREFIXES = (ARTICLES_PREFIX, DUPLICATES_PREFIX, DEAD_LETTERS_PREFIX)


class JobOutputs(NamedTuple):
    """The pipeline's outputs; every input record ends in exactly one of them.

    ``after_success`` runs once a batch job is done and its outputs are durable:
    a bounded Kafka run commits its consumer group's offsets there. ``commit``
    is the streaming counterpart, applied to what the writers acknowledge.
    """

    articles: beam.PCollection
    dead_letters: beam.PCollection
    after_success: Callable[[], None]
    duplicates: beam.PCollection | None = None
    ranges: beam.PCollection | None = None
    commit: CommitOffsets | None = None
    input_bytes: int | None = None  # files: their size; Kafka: not known up front


def adds_to_output(wirenews: WirenewsOptions) -> bool:
    """Whether a batch run adds its files to its folder instead of replacing an earlier run's.

    A bounded read for a consumer group reads only what the group has not read yet,
    so an earlier run's files hold records no later run will read again.
    """
    return is_kafka_url(wirenews.source) and bool(wirenews.until_end) and bool(wirenews.group)


def is_streaming(options: PipelineOptions) -> bool:
    """Whether the job reads without end: a Kafka source without ``--until-end``."""
    wirenews = options.view_as(WirenewsOptions)
    return is_kafka_url(wirenews.source) and not wirenews.until_end


def build_outputs(pipeline: beam.Pipeline, options: PipelineOptions) -> JobOutputs:
    """Add the reading and processing steps to ``pipeline``."""
    wirenews = options.view_as(WirenewsOptions)
    if is_kafka_url(wirenews.source):
        return _from_kafka(pipeline, wirenews)
    files = ReadArticleFiles(wirenews.source, wirenews.max_record_bytes)
    read = pipeline | "ReadArticles" >> files
    outputs = _process(
        read[ReadArticleFiles.RECORDS],
        (read[ReadArticleFiles.DEAD_LETTERS],),
        wirenews,
        streaming=False,
    )
    return outputs._replace(input_bytes=files.input_bytes)


def _from_kafka(pipeline: beam.Pipeline, wirenews: WirenewsOptions) -> JobOutputs:
    topic = KafkaTopic.parse(wirenews.source)
    settings = kafka_settings(wirenews, topic.bootstrap)
    group = wirenews.group
    start = (
        parse_start(wirenews.start) if wirenews.start else ("committed" if group else "earliest")
    )
    bounded = bool(wirenews.until_end)
    reader = ReadFromKafka(settings, topic.topic, start=start, group=group, bounded=bounded)
    read = pipeline | "ReadArticles" >> reader

    def commit_at_end() -> None:
        if group and bounded:
            commit_offsets(settings, group, reader.offsets_to_commit)

    outputs = _process(
        read[RECORDS], (), wirenews, after_success=commit_at_end, streaming=not bounded
    )
    if bounded or not group:
        return outputs
    starts = {f"{r.topic}/{r.partition}": r.start for r in reader.ranges}
    return outputs._replace(ranges=read[RANGES], commit=CommitOffsets(settings, group, starts))


def _process(
    records: beam.PCollection,
    read_dead_letters: tuple[beam.PCollection, ...],
    wirenews: WirenewsOptions,
    *,
    streaming: bool,
    after_success: Callable[[], None] = lambda: None,
) -> JobOutputs:
    if not streaming:
        # One JSON Lines file (or one Kafka partition) is read by one worker; spread its
        # records so that every worker parses, detects languages and fingerprints.
        records = records | "SpreadRecords" >> beam.Reshuffle()
    parsed = records | "ParseArticles" >> ParseArticles(wirenews.max_record_bytes)
    dead_letters = (
        *read_dead_letters,
        parsed[ParseArticles.DEAD_LETTERS],
    ) | "CollectDeadLetters" >> beam.Flatten()
    if wirenews.dedup == "off":
        articles = parsed[ParseArticles.ARTICLES] | "Annotate" >> AnnotateArticles(
            wirenews.spacy_model, processes=wirenews.nlp_processes or 0
        )
        return JobOutputs(articles, dead_letters, after_success)
    keep = wirenews.duplicates == "keep"
    deduplicate = (
        DeduplicateStream(keep=keep, horizon_seconds=wirenews.dedup_horizon)
        if streaming
        else DeduplicateArticles(keep=keep)
    )
    deduped = parsed[ParseArticles.ARTICLES] | "Deduplicate" >> deduplicate
    # NLP after dedup: dropped copies are not worth the model's time.
    articles = deduped[DeduplicateArticles.ARTICLES] | "Annotate" >> AnnotateArticles(
        wirenews.spacy_model, processes=wirenews.nlp_processes or 0
    )
    return JobOutputs(
        articles=articles,
        dead_letters=dead_letters,
        after_success=after_success,
        duplicates=deduped[DeduplicateArticles.DUPLICATES],
    )


def kafka_settings(wirenews: WirenewsOptions, bootstrap: str) -> KafkaSettings:
    """Client settings for ``bootstrap`` from the pass-through flags."""
    return KafkaSettings.from_flags(
        bootstrap, wirenews.kafka_config or (), wirenews.kafka_password_env
    )


def dead_letter_target(wirenews: WirenewsOptions) -> str:
    """Where dead letters go: ``--dead-letters``, else beside the articles."""
    return wirenews.dead_letters or beside_articles(wirenews, "dead-letters")


def beside_articles(wirenews: WirenewsOptions, suffix: str) -> str:
    """The output folder itself, or for a Kafka output the topic ``<topic>-<suffix>``."""
    if is_kafka_url(wirenews.output):
        topic = KafkaTopic.parse(wirenews.output)
        return str(KafkaTopic(topic.bootstrap, f"{topic.topic}-{suffix}"))
    return wirenews.output


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> JobOutputs:
    """Add the whole job to ``pipeline``, writing its outputs under ``--output``."""
    wirenews = options.view_as(WirenewsOptions)
    outputs = build_outputs(pipeline, options)
    streaming = is_streaming(options)
    duplicates_target = beside_articles(wirenews, "duplicates")
    dead_letters_target = dead_letter_target(wirenews)
    targets = [wirenews.output, dead_letters_target]
    if outputs.duplicates is not None:
        targets.append(duplicates_target)
    message_limits = _create_output_topics(wirenews, targets)
    # Files of a run that adds to its folder are named by its start, so runs never mix.
    run_name = time.strftime("-%Y%m%dT%H%M%SZ", time.gmtime()) if adds_to_output(wirenews) else ""
    write = functools.partial(
        _write,
        wirenews=wirenews,
        streaming=streaming,
        run_name=run_name,
        message_limits=message_limits,
    )
    articles = write(
        outputs.articles,
        label="WriteArticles",
        target=wirenews.output,
        prefix=ARTICLES_PREFIX,
        schema_name="Article",
    )
    duplicates = write(
        outputs.duplicates,
        label="WriteDuplicates",
        target=duplicates_target,
        prefix=DUPLICATES_PREFIX,
        schema_name="Duplicate",
    )
    # What a topic would not take (too large a message) joins the dead letters.
    refused = [written.refused for written in (articles, duplicates) if written.refused]
    dead_letters = write(
        (outputs.dead_letters, *refused) | "CollectRefused" >> beam.Flatten()
        if refused
        else outputs.dead_letters,
        label="WriteDeadLetters",
        target=dead_letters_target,
        prefix=DEAD_LETTERS_PREFIX,
        schema_name="DeadLetter",
    )
    if outputs.commit is not None:
        acks = [written.acks for written in (articles, duplicates, dead_letters) if written.acks]
        (outputs.ranges, *acks) | "CommitOffsets" >> outputs.commit
    return outputs


def _create_output_topics(wirenews: WirenewsOptions, targets: list[str]) -> dict[str, int]:
    """Create the output topics that do not exist yet; the largest message of each, by URL."""
    topics: dict[str, list[str]] = {}
    for target in filter(is_kafka_url, targets):
        topic = KafkaTopic.parse(target)
        topics.setdefault(topic.bootstrap, []).append(topic.topic)
    limits = {}
    for bootstrap, names in topics.items():
        for name, limit in ensure_topics(kafka_settings(wirenews, bootstrap), names).items():
            limits[str(KafkaTopic(bootstrap, name))] = limit
    return limits


class _Written(NamedTuple):
    """What a writer gives back: offsets it wrote, and records it refused (as dead letters)."""

    acks: beam.PCollection | None = None
    refused: beam.PCollection | None = None


def _write(
    records: beam.PCollection | None,
    *,
    label: str,
    target: str,
    prefix: str,
    schema_name: str,
    wirenews: WirenewsOptions,
    streaming: bool,
    run_name: str,
    message_limits: dict[str, int],
) -> _Written:
    """Write to a topic or a folder; the offsets written, where the sink reports them.

    Batch files are ``<prefix><run_name>-SSSSS-of-NNNNN.avro``.
    """
    if records is None:
        return _Written()
    counter = f"write_{prefix}"
    if is_kafka_url(target):
        topic = KafkaTopic.parse(target)
        written = records | label >> WriteKafkaAvro(
            kafka_settings(wirenews, topic.bootstrap),
            topic.topic,
            schema_name,
            registry_url=wirenews.schema_registry,
            counter=counter,
            message_limit=message_limits.get(str(topic)),
        )
        return _Written(written[WriteKafkaAvro.WRITTEN], written[WriteKafkaAvro.REFUSED])
    if streaming:
        return _Written(
            records
            | label
            >> WriteWindowedAvro(
                target, prefix, schema_name, window_seconds=wirenews.window, counter=counter
            )
        )
    records | label >> WriteAvro(
        FileSystems.join(target, prefix + run_name), schema_name, counter=counter
    )
    return _Written()
