"""Listing and opening files, local or remote, without importing Beam for local ones.

Local files and folders are walked and opened with the standard library, as
Beam's LocalFileSystem does; globs and remote paths (``gs://``…) go through
Beam's ``FileSystems``, imported only then. Importing Beam costs half a second,
which ``wirenews feed`` and ``wirenews read`` would otherwise pay on every call.

Example:
    sizes = match_files("seeds/", folder=True)   # {path: bytes}
    with open_file(path) as stream: ...
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import IO

from transforms.errors import WirenewsError

__all__ = ["is_local", "match_files", "must_exist", "open_file"]

# What Beam's FileSystems take for a scheme (FileSystems.URI_SCHEMA_PATTERN), and for a glob.
_SCHEME = re.compile(r"[a-zA-Z][-a-zA-Z0-9+.]*://")
_GLOB = re.compile(r"[*?[]")


def is_local(path: str) -> bool:
    """A path on this machine's file system, not a ``scheme://`` URL."""
    return not _SCHEME.match(path.strip())


def must_exist(source: str) -> None:
    """Refuse a ``source`` that names a local file or folder that does not exist (not a glob).

    Raises:
        WirenewsError: it does not exist.
    """
    if is_local(source) and not _GLOB.search(source) and not os.path.exists(source):
        message = f"{source!r} does not exist"
        raise WirenewsError(message)


def match_files(source: str, *, folder: bool) -> dict[str, int]:
    """Every file a path, folder (recursively) or glob names, with its size in bytes.

    Nothing matched is an empty dict, not an error.
    """
    if is_local(source) and not _GLOB.search(source):
        return _local_files(source, folder=folder)
    from apache_beam.io.filesystems import FileSystems  # noqa: PLC0415 - see the module's doc

    pattern = FileSystems.join(source, "**") if folder else source
    return {m.path: m.size_in_bytes for m in FileSystems.match([pattern])[0].metadata_list}


def open_file(path: str) -> IO[bytes]:
    """The file's bytes, as stored (no decompression)."""
    if is_local(path):
        return open(path, "rb")
    from apache_beam.io.filesystem import CompressionTypes  # noqa: PLC0415 - as above
    from apache_beam.io.filesystems import FileSystems  # noqa: PLC0415

    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _local_files(source: str, *, folder: bool) -> dict[str, int]:
    paths = (
        [os.path.join(dirpath, name) for dirpath, _dirs, names in os.walk(source) for name in names]
        if folder
        else [source]
    )
    sizes = {}
    for path in paths:
        with contextlib.suppress(OSError):  # gone since, or a broken link: Beam skips it too
            sizes[path] = os.path.getsize(path)
    return sizes
