"""Checksummed, resumable HTTP downloads of a dataset's raw files.

`download(url, sha256, target)` streams `url` into `<target>.part`, resuming an interrupted
download with a `Range: bytes=<size>-` request (a server that answers 200 instead of 206 is
read from the start), retries connection errors, timeouts, 429 and 5xx answers with exponential
backoff, checks the sha256 of the complete file and only then renames it onto `target`.
A file already at `target` with the expected sha256 is not downloaded again.

`Accept-Encoding: identity` is sent so that byte ranges and the checksum refer to the file's own
bytes, not to a compressed transfer encoding.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import requests
from tqdm.auto import tqdm

from harness.data.declaration import SHA256_PATTERN
from harness.errors import DataError
from harness.io_utils import sha256_file

log = logging.getLogger("msabench")

CHUNK_BYTES = 1 << 16
_RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}
_RETRYABLE_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _TransientError(Exception):
    """A failure worth retrying (dropped connection, timeout, 5xx, short body)."""


class _RangeNotSatisfiable(Exception):
    """A resume request the server cannot honour (HTTP 416, or a 206 for another range)."""


def part_path(target: Path) -> Path:
    """Where an unfinished download of `target` is kept: `<target>.part`."""
    return target.with_name(target.name + ".part")


def verify_file(path: str | os.PathLike[str], sha256: str) -> Path:
    """Check that `path` exists and has the given sha256; return it as a Path."""
    path, expected = Path(path), _expected_sha(sha256)
    if not path.is_file():
        raise DataError(f"{path}: not found; expected a file with sha256 {expected}")
    got = sha256_file(path)
    if got != expected:
        raise DataError(
            f"{path}: sha256 {got[:12]}... differs from the expected {expected[:12]}...; "
            "the file is not the declared one"
        )
    return path


def download(
    url: str,
    sha256: str,
    target: str | os.PathLike[str],
    retries: int = 3,
    timeout: float = 60,
    progress: bool = True,
    *,
    backoff: float = 1.0,
) -> Path:
    """Download `url` to `target` unless it is already there with this sha256; return `target`.

    Up to `retries` further attempts follow a transient failure, after `backoff * 2**k` seconds,
    each resuming from the bytes already in `<target>.part`. A wrong checksum deletes the partial
    file and raises DataError; so does a non-retryable HTTP status (404, 403, ...).
    """
    target, expected = Path(target), _expected_sha(sha256)
    if target.is_file():
        if sha256_file(target) == expected:
            log.info("%s: present with the expected sha256, not downloaded again", target)
            return target
        log.warning("%s: sha256 differs from the declared one; downloading it again", target)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    with requests.Session() as session:
        _download_with_retries(session, url, part, retries, timeout, progress, backoff)
    got = sha256_file(part)
    if got != expected:
        part.unlink()
        raise DataError(
            f"{url}: sha256 {got[:12]}... differs from the expected {expected[:12]}...; "
            "the download was deleted"
        )
    os.replace(part, target)
    return target


def _expected_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256):
        raise DataError(f"sha256: expected 64 hex characters, got {sha256!r}")
    return sha256.lower()


def _download_with_retries(
    session: requests.Session,
    url: str,
    part: Path,
    retries: int,
    timeout: float,
    progress: bool,
    backoff: float,
) -> None:
    """Fill `part` with the whole body of `url`, retrying transient failures."""
    for attempt in range(retries + 1):
        try:
            _fetch_once(session, url, part, timeout, progress)
            return
        except _RangeNotSatisfiable:
            reason = f"server could not resume at byte {_size(part)}; restarting"
            part.unlink()
        except _TransientError as exc:
            reason = str(exc)
        except _RETRYABLE_ERRORS as exc:
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
        if attempt == retries:
            break
        delay = backoff * 2**attempt
        log.warning("%s: %s; retry %d/%d in %.1fs", url, reason, attempt + 1, retries, delay)
        time.sleep(delay)
    raise DataError(
        f"{url}: {reason}; gave up after {retries + 1} attempts "
        f"(run again to resume from {_size(part)} bytes in {part})"
    )


def _fetch_once(
    session: requests.Session, url: str, part: Path, timeout: float, progress: bool
) -> None:
    """One GET, resuming after the bytes already in `part`; raises on a short or failed body."""
    offset = _size(part)
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.exceptions.InvalidURL as exc:
        raise DataError(f"{url}: invalid URL ({_first_line(exc)})") from None
    except requests.exceptions.MissingSchema:
        raise DataError(f"{url}: invalid URL; expected http:// or https://") from None
    with response:
        offset = _check_status(response, url, offset)
        expected_total = _expected_total(response, offset)
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as handle,
            tqdm(
                total=expected_total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=None if progress else True,
                leave=False,
            ) as bar,
        ):
            for chunk in response.iter_content(CHUNK_BYTES):
                handle.write(chunk)
                bar.update(len(chunk))
    if expected_total is not None and _size(part) < expected_total:
        raise _TransientError(f"connection closed after {_size(part)} of {expected_total} bytes")


def _check_status(response: requests.Response, url: str, offset: int) -> int:
    """The offset the body starts at (0 when the server ignored the Range header)."""
    status = response.status_code
    if status == 416 and offset:
        raise _RangeNotSatisfiable()
    if status in _RETRYABLE_STATUS:
        raise _TransientError(f"HTTP {status} {response.reason}")
    if status >= 400:
        raise DataError(f"{url}: HTTP {status} {response.reason}; expected 200 (check the URL)")
    if status == 206 and offset:
        content_range = response.headers.get("Content-Range", "")
        if content_range.startswith(f"bytes {offset}-"):
            return offset
        raise _RangeNotSatisfiable()  # a range other than the one asked for: start afresh
    if offset:
        log.info("%s: server answered %d, not 206; downloading from the start", url, status)
    return 0


def _expected_total(response: requests.Response, offset: int) -> int | None:
    """Total file size: the Content-Length of this body plus the bytes already held."""
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
