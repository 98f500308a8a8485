"""Explicit, resumable, checksum-verified downloads of catalog models (the only network use).

A transfer writes `<file>.part` beside its destination and resumes it with an HTTP Range
request; the finished file is verified against the catalog's checksum and only then renamed
into place. Nothing here runs unless the user asks for a download.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import studio
from studio.core.errors import BadInputError, ModelError
from studio.core.paths import models_dir
from studio.engine.models._catalog import CatalogEntry, catalog_entry, companion_of
from studio.engine.models.store import InstalledModel, _install, file_digests


class DownloadInterrupted(ModelError):
    """The transfer stopped part-way; the `.part` file resumes on the next try."""

    @property
    def window_text(self) -> str:
        return str(self).replace("run the same command again", "try again")


class UnverifiableDownload(ModelError):
    """The catalog has no checksum for the model, so a download cannot be verified."""

    def __init__(self, entry: CatalogEntry) -> None:
        super().__init__(
            f"The catalog has no checksum for {entry.id}, so the download cannot be verified. "
            "Pass --allow-unverified to accept it anyway."
        )
        self._window = (
            f"The catalog has no checksum for {entry.name}, so Studio cannot verify a download. "
            f"Get the file from {entry.source} and import it (Import model…)."
        )

    @property
    def window_text(self) -> str:
        return self._window


ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes received so far, total bytes or None when the server does not say)."""

DOWNLOADS_DIR = ".downloads"
_CHUNK = 1 << 16
_TIMEOUT_S = 30
# Where the catalog does not know a file's size (the largest it knows is under 1 GB).
UNKNOWN_SIZE_LIMIT = 4 << 30


def download(
    model_id: str,
    progress_cb: ProgressCallback | None = None,
    url_override: str | None = None,
    *,
    allow_unverified: bool = False,
) -> InstalledModel:
    """Download a catalog model (and its companion files), verify it, and import it."""
    folder = models_dir() / DOWNLOADS_DIR
    plan = _plan(model_id, url_override, allow_unverified=allow_unverified)
    paths = [_fetch_one(entry, url, folder, progress_cb) for entry, url in plan]
    try:
        return _install(paths[-1], move=True)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def fetch(
    model_id: str,
    folder: Path,
    progress_cb: ProgressCallback | None = None,
    url_override: str | None = None,
    *,
    allow_unverified: bool = False,
) -> Path:
    """Download a catalog model's file (and its companions) into `folder`, verified.

    Everything is checked before any transfer: the model must have a download address and a
    checksum (unless `allow_unverified`). A checksum mismatch deletes the download. Returns the
    model file's path.
    """
    plan = _plan(model_id, url_override, allow_unverified=allow_unverified)
    return [_fetch_one(entry, url, folder, progress_cb) for entry, url in plan][-1]


def _plan(
    model_id: str, url_override: str | None, *, allow_unverified: bool
) -> list[tuple[CatalogEntry, str]]:
    """The (entry, URL) pairs to fetch, companions first; refuses what cannot be done."""
    entry = catalog_entry(model_id)
    if entry is None:
        raise BadInputError(
            f"{model_id!r} is not in the model catalog (see `studio models list --catalog`)"
        )
    owner = companion_of(entry.id)
    if owner is not None:
        raise BadInputError(f"{entry.id} is part of {owner.id}: download {owner.id} instead")
    companions = [catalog_entry(companion) for companion in entry.companions]
    plan = [(c, _url(c, None, allow_unverified)) for c in companions if c is not None]
    return [*plan, (entry, _url(entry, url_override, allow_unverified))]


def _url(entry: CatalogEntry, url_override: str | None, allow_unverified: bool) -> str:
    if entry.unsupported:
        raise ModelError(f"Studio cannot use {entry.id}: {entry.unsupported}")
    url = url_override or entry.download_url
    if not url:
        raise ModelError(
            f"No download address is known for {entry.id}. It is published at {entry.source}; "
            "download it from there and import the file."
        )
    if not url.startswith(("https://", "http://")):
        raise BadInputError(f"Only http(s) downloads are supported, not {url}")
    if not entry.checksums and not allow_unverified:
        raise UnverifiableDownload(entry)
    return url


def _fetch_one(
    entry: CatalogEntry, url: str, folder: Path, progress_cb: ProgressCallback | None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.file
    if target.is_file() and entry.checksums and entry.mismatch(file_digests(target)) is None:
        return target  # fetched and verified before
    partial = target.with_name(target.name + ".part")
    limit = entry.size or UNKNOWN_SIZE_LIMIT
    try:
        _transfer(url, partial, progress_cb or _ignore, limit)
    except _TooLargeError as err:
        partial.unlink(missing_ok=True)
        known = "the catalog's size" if entry.size else "the limit for a model of unknown size"
        raise ModelError(
            f"Download of {entry.id} refused: the server sends more than {known} "
            f"({limit} bytes, {err}). Nothing was kept."
        ) from None
    _verify_download(entry, partial)
    os.replace(partial, target)
    return target


def _ignore(done: int, total: int | None) -> None:
    """No progress display."""


class _TooLargeError(Exception):
    """The server sends more than the file can be."""


def _transfer(url: str, partial: Path, progress_cb: ProgressCallback, limit: int) -> None:
    """Fetch `url` into `partial`, resuming from its current length when the server allows.

    Raises `_TooLargeError` as soon as the file would pass `limit` bytes.
    """
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"studio/{studio.__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # nothing left to fetch: the part is complete (verification decides)
        raise ModelError(f"Download failed: HTTP {err.code} {err.reason} ({url})") from None
    except (urllib.error.URLError, OSError) as err:
        raise ModelError(f"Download failed: cannot reach {url} ({_reason(err)})") from None
    with response:
        if response.status != 206 or not _resumes_at(response.headers.get("Content-Range"), offset):
            offset = 0  # the server sends the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        if total is not None and total > limit:
            raise _TooLargeError(f"it announces {total} bytes")
        with partial.open("ab" if offset else "wb") as out:
            done = _copy(response, out, offset, total, progress_cb, limit)
    if total is not None and done < total:
        raise DownloadInterrupted(
            f"Download interrupted at {done} of {total} bytes; run the same command again to resume"
        )


def _copy(
    response: BinaryIO,
    out: BinaryIO,
    done: int,
    total: int | None,
    progress_cb: ProgressCallback,
    limit: int,
) -> int:
    progress_cb(done, total)
    try:
        while chunk := response.read(_CHUNK):
            if done + len(chunk) > limit:
                raise _TooLargeError(f"more than {limit} bytes arrived")
            out.write(chunk)
            done += len(chunk)
            progress_cb(done, total)
    except (OSError, http.client.HTTPException) as err:  # reset, timeout, short read
        out.flush()
        raise DownloadInterrupted(
            f"Download interrupted at {done} bytes ({_reason(err)}); "
            "run the same command again to resume"
        ) from None
    return done


def _resumes_at(content_range: str | None, offset: int) -> bool:
    """Whether a `Content-Range: bytes START-END/TOTAL` header starts at `offset`."""
    if not content_range or not content_range.startswith("bytes "):
        return False
    start = content_range[len("bytes ") :].split("-", 1)[0]
    return start.isdigit() and int(start) == offset


def _verify_download(entry: CatalogEntry, partial: Path) -> None:
    mismatch = entry.mismatch(file_digests(partial))
    if mismatch:
        partial.unlink(missing_ok=True)
        raise ModelError(f"Download of {entry.id} refused: {mismatch}. The file was deleted.")


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None)
    return str(reason or err) or type(err).__name__
