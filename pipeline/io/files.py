"""Reading article files: folders (recursive), globs, ``.txt``/``.json``/``.jsonl``, gzipped or not.

The driver expands the source into file paths (:func:`expand_source`); workers
read each file in bounded memory (:func:`read_file`) into :class:`RawRecord`s,
one per article, and refuse what cannot be read as dead letters. No Beam here
(see :mod:`pipeline.io.paths`): :class:`pipeline.io.file_source.ReadArticleFiles`
is the Beam step.

Example:
    for item in read_file(path):
        ...  # a RawRecord, or a DeadLetter saying why the bytes are not one
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO

from pipeline.io.paths import is_local, match_files, must_exist, open_file
from transforms.deadletters import MAX_DEAD_LETTER_PAYLOAD, make_dead_letter
from transforms.errors import (
    InvalidEncoding,
    RecordTooLarge,
    UnreadableInput,
    UnsupportedInput,
    WirenewsError,
)
from transforms.parse import DEFAULT_MAX_RECORD_BYTES
from transforms.records import DeadLetter, MediaType, Origin, RawRecord

__all__ = ["expand_source", "file_format", "list_source", "read_file"]

LOGGER = logging.getLogger(__name__)

_FORMATS = {".txt": "txt", ".json": "json", ".jsonl": "jsonl"}
_MEDIA_TYPES = {"txt": MediaType.TEXT, "json": MediaType.JSON, "jsonl": MediaType.JSON}
_GZIP_SUFFIX = ".gz"
_CHUNK_BYTES = 1024 * 1024


def file_format(path: str) -> tuple[str, bool] | None:
    """``("txt" | "json" | "jsonl", gzipped)`` from the file name, or None if unsupported."""
    name = path.lower()
    gzipped = name.endswith(_GZIP_SUFFIX)
    if gzipped:
        name = name[: -len(_GZIP_SUFFIX)]
    fmt = _FORMATS.get(os.path.splitext(name)[1])
    return (fmt, gzipped) if fmt else None


def expand_source(source: str) -> list[str]:
    """The files a source names: a file, a folder (read recursively) or a glob.

    Files of unsupported types inside a folder or glob are skipped with a log
    line; naming one explicitly is an error, as is matching nothing.
    """
    return [path for path, _size in list_source(source)]


def list_source(source: str) -> list[tuple[str, int]]:
    """:func:`expand_source` with each file's size in bytes, from the same one listing."""
    local = is_local(source)
    if local:
        source = os.path.abspath(os.path.expanduser(source))
    must_exist(source)
    is_folder = source.endswith("/") or (local and os.path.isdir(source))
    try:
        sizes = match_files(source, folder=is_folder)
    except Exception as exc:  # Beam raises BeamIOError (or OSError) for a missing path.
        message = f"cannot list input {source!r}: {exc}"
        raise WirenewsError(message) from exc
    matched = sorted(sizes)
    supported = [path for path in matched if file_format(path)]
    skipped = sorted(set(matched) - set(supported))
    if skipped and not is_folder and len(matched) == 1:
        message = (
            f"{source!r} is not an article file: expected .txt, .json or .jsonl, "
            "optionally gzipped (.gz)"
        )
        raise WirenewsError(message)
    if skipped:
        LOGGER.warning("skipping %d files of unsupported types, e.g. %s", len(skipped), skipped[:3])
    if not supported:
        message = f"no article files (.txt, .json, .jsonl, optionally .gz) in {source!r}"
        raise WirenewsError(message)
    return [(path, sizes[path]) for path in supported]


def read_file(
    path: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[RawRecord | DeadLetter]:
    """Read one file into raw records, never holding more than one record in memory.

    A record over ``max_record_bytes`` is not read whole: a dead letter keeps its
    first bytes and its full size. Files that cannot be read become dead letters.
    """
    found = file_format(path)
    if found is None:
        yield _refuse(path, None, UnsupportedInput(f"unsupported file type: {path}"), b"")
        return
    fmt, gzipped = found
    lines = 0  # of a JSON Lines file, passed on before any error
    try:
        with open_file(path) as raw:
            stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gzipped else raw
            if fmt == "jsonl":
                for item in _read_lines(path, stream, max_record_bytes):
                    lines += 1
                    yield item
            else:
                yield _read_whole(path, stream, _MEDIA_TYPES[fmt], max_record_bytes)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        read = f" after its first {lines:,} lines, which were read" if lines else ""
        error = InvalidEncoding(f"corrupt gzip stream{read}: {exc}")
        yield _refuse(path, None, error, *_stored_prefix(path))
    except OSError as exc:
        yield _refuse(path, None, UnreadableInput(f"cannot read file: {exc}"), b"")


def _stored_prefix(path: str) -> tuple[bytes, int | None]:
    """The file's first bytes as stored (compressed), and its size; nothing if it is gone."""
    try:
        with open_file(path) as raw:
            stored = raw.read(MAX_DEAD_LETTER_PAYLOAD)
            return stored, len(stored) + _drain(raw)
    except OSError:
        return b"", None


def _read_whole(
    path: str, stream: IO[bytes], media_type: MediaType, limit: int
) -> RawRecord | DeadLetter:
    payload = stream.read(limit + 1)
    if len(payload) <= limit:
        return RawRecord(payload=payload, origin=Origin.file(path), media_type=media_type)
    size = len(payload) + _drain(stream)
    return _too_large(path, None, payload, size, limit)


def _read_lines(path: str, stream: IO[bytes], limit: int) -> Iterator[RawRecord | DeadLetter]:
    line_number = 0
    while True:
        line = stream.readline(limit + 2)  # room for the newline, and one byte to tell
        if not line:
            return
        line_number += 1
        if len(line) > limit + 1 or (len(line) == limit + 1 and not line.endswith(b"\n")):
            rest, newline = (0, True) if line.endswith(b"\n") else _skip_line(stream)
            size = len(line) + rest - newline  # sizes exclude the newline, as payloads do
            yield _too_large(path, line_number, line, size, limit)
            continue
        if line.strip():  # blank lines separate nothing and are not records
            yield RawRecord(
                payload=line.rstrip(b"\r\n"),
                origin=Origin.file(path, line=line_number),
                media_type=MediaType.JSON,
            )


def _drain(stream: IO[bytes]) -> int:
    """Read to the end without keeping anything; return how many bytes there were."""
    total = 0
    while chunk := stream.read(_CHUNK_BYTES):
        total += len(chunk)
    return total


def _skip_line(stream: IO[bytes]) -> tuple[int, bool]:
    """Skip the rest of an over-long line: how many bytes, and whether a newline ended it."""
    total = 0
    while chunk := stream.readline(_CHUNK_BYTES):
        total += len(chunk)
        if chunk.endswith(b"\n"):
            return total, True
    return total, False


def _too_large(path: str, line: int | None, prefix: bytes, size: int, limit: int) -> DeadLetter:
    error = RecordTooLarge(
        f"record is {size:,} bytes, over the limit of {limit:,} (--max-record-bytes)"
    )
    return make_dead_letter(
        prefix,
        Origin.file(path, line=line),
        stage="read",
        error=error,
        failed_at=datetime.now(timezone.utc),
        payload_size=size,
        max_payload=MAX_DEAD_LETTER_PAYLOAD,
    )


def _refuse(
    path: str,
    line: int | None,
    error: Exception,
    payload: bytes,
    payload_size: int | None = None,
) -> DeadLetter:
    return make_dead_letter(
        payload,
        Origin.file(path, line=line),
        stage="read",
        error=error,
        failed_at=datetime.now(timezone.utc),
        payload_size=payload_size,
    )
