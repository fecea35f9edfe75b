"""Resumable, checksummed downloads and the `url` source, against a loopback HTTP server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loopback_http import LoopbackServer

from harness.config import DatasetConfig
from harness.data.download import download, part_path, verify_file
from harness.data.sources import fetch_dataset, parse_remote_files
from harness.data.store import read_manifest, write_npz
from harness.errors import ConfigError, DataError

PAYLOAD = np.random.default_rng(0).bytes(300_000)  # several download chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture()
def served(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "blob.bin").write_bytes(PAYLOAD)
    return root


@pytest.fixture()
def server(served: Path) -> Iterator[LoopbackServer]:
    with LoopbackServer(served) as running:
        yield running


def _get(server: LoopbackServer, target: Path, **kwargs) -> Path:
    kwargs = {"progress": False, "backoff": 0.0, **kwargs}
    return download(f"{server.url}/sub/blob.bin", SHA, target, **kwargs)


def test_fresh_download_is_verified_and_renamed_into_place(server, tmp_path) -> None:
    target = tmp_path / "out" / "blob.bin"
    assert _get(server, target) == target
    assert target.read_bytes() == PAYLOAD
    assert not part_path(target).exists()
    assert [r.range for r in server.state.requests] == [None]


def test_dropped_connection_is_resumed_with_a_range_request(server, tmp_path) -> None:
    server.state.drop_after = 100_000
    target = tmp_path / "blob.bin"
    _get(server, target, retries=2)
    assert target.read_bytes() == PAYLOAD
    first, second = server.state.requests
    assert first.range is None
    assert second.range is not None and second.range.startswith("bytes=")
    assert 0 < int(second.range[len("bytes=") : -1]) <= 100_000


def test_partial_file_left_by_an_earlier_run_is_resumed(server, tmp_path) -> None:
    target = tmp_path / "blob.bin"
    part_path(target).write_bytes(PAYLOAD[:123_456])
    _get(server, target)
    assert target.read_bytes() == PAYLOAD
    assert [r.range for r in server.state.requests] == ["bytes=123456-"]


def test_server_answering_200_to_a_range_request_restarts_the_file(server, tmp_path) -> None:
    target = tmp_path / "blob.bin"
    part_path(target).write_bytes(b"stale bytes of something else")
    server.state.ignore_range = True
    _get(server, target)
    assert target.read_bytes() == PAYLOAD


def test_complete_partial_file_answered_416_is_downloaded_again(server, tmp_path) -> None:
    target = tmp_path / "blob.bin"
    part_path(target).write_bytes(PAYLOAD + b"extra")
    _get(server, target)
    assert target.read_bytes() == PAYLOAD
    assert [r.range for r in server.state.requests] == [f"bytes={len(PAYLOAD) + 5}-", None]


def test_server_error_is_retried(server, tmp_path) -> None:
    server.state.fail_status = 500
    target = tmp_path / "blob.bin"
    _get(server, target)
    assert target.read_bytes() == PAYLOAD
    assert len(server.state.requests) == 2


def test_retries_are_bounded(server, tmp_path) -> None:
    server.state.fail_status, server.state.fail_times = 503, 10
    with pytest.raises(DataError, match=r"HTTP 503 .*gave up after 3 attempts") as info:
        _get(server, tmp_path / "blob.bin", retries=2)
    assert "\n" not in str(info.value)
    assert len(server.state.requests) == 3


def test_checksum_mismatch_deletes_the_download(server, tmp_path) -> None:
    server.state.corrupt = True
    target = tmp_path / "blob.bin"
    target.write_bytes(b"an old wrong copy")
    with pytest.raises(DataError) as info:
        _get(server, target)
    message = str(info.value)
    got = hashlib.sha256(bytes([PAYLOAD[0] ^ 0xFF]) + PAYLOAD[1:]).hexdigest()
    assert message == (
        f"{server.url}/sub/blob.bin: sha256 {got[:12]}... differs from the expected "
        f"{SHA[:12]}...; the download was deleted"
    )
    assert not target.exists() and not part_path(target).exists()


def test_not_found_is_one_line_naming_url_and_status(server, tmp_path) -> None:
    url = f"{server.url}/sub/missing.bin"
    with pytest.raises(DataError) as info:
        download(url, SHA, tmp_path / "x.bin", progress=False, backoff=0.0)
    message = str(info.value)
    assert message.startswith(f"{url}: HTTP 404") and "\n" not in message
    assert len(server.state.requests) == 1  # not retried
    assert not part_path(tmp_path / "x.bin").exists()


def test_present_file_is_not_downloaded_again(server, tmp_path) -> None:
    target = tmp_path / "blob.bin"
    target.write_bytes(PAYLOAD)
    before = target.stat().st_mtime_ns
    _get(server, target)
    assert server.state.requests == []
    assert target.stat().st_mtime_ns == before


def test_present_file_with_wrong_checksum_is_downloaded_again(server, tmp_path) -> None:
    target = tmp_path / "blob.bin"
    target.write_bytes(b"truncated")
    _get(server, target)
    assert target.read_bytes() == PAYLOAD


def test_verify_file(tmp_path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    assert verify_file(path, SHA.upper()) == path
    with pytest.raises(DataError, match=r"blob.bin: sha256 \w{12}\.\.\. differs from the expected"):
        verify_file(path, "0" * 64)
    with pytest.raises(
        DataError, match=f"missing.bin: not found; expected a file with sha256 {SHA}"
    ):
        verify_file(tmp_path / "missing.bin", SHA)
    with pytest.raises(DataError, match="sha256: expected 64 hex characters"):
        verify_file(path, "abc")


# -- the url source --------------------------------------------------------------------------


def _write_npz_bundle(root: Path) -> None:
    """train/valid/test.npz in the store's own keys, under root/npz/."""
    rng = np.random.default_rng(1)
    (root / "npz").mkdir()
    for split, n in (("train", 12), ("valid", 4), ("test", 6)):
        write_npz(
            root / "npz" / f"{split}.npz",
            {
                "text": rng.normal(size=(n, 3, 5)).astype(np.float32),
                "text_lengths": np.full(n, 3, dtype=np.int64),
                "labels": rng.uniform(-3, 3, size=n).astype(np.float32),
                "ids": np.array([f"{split}_{i}" for i in range(n)]),
            },
        )


def _url_config(server: LoopbackServer, root: Path) -> DatasetConfig:
    """A url dataset of the three npz files served from root/npz/, placed at the raw folder's
    top level (where the npz reader looks)."""
    files = [
        {
            "url": f"{server.url}/npz/{split}.npz",
            "sha256": hashlib.sha256((root / "npz" / f"{split}.npz").read_bytes()).hexdigest(),
            "path": f"{split}.npz",
        }
        for split in ("train", "valid", "test")
    ]
    return DatasetConfig("tiny_url", "url", "mosi", {"format": "npz", "files": files})


def test_url_source_downloads_into_datasets_then_builds_the_store(
    server, served, tmp_path, monkeypatch
) -> None:
    _write_npz_bundle(served)
    monkeypatch.chdir(tmp_path)
    config = _url_config(server, served)
    fetch_dataset(config, tmp_path / "features" / "tiny_url")
    manifest = read_manifest(tmp_path / "features" / "tiny_url")
    sizes = {name: entry.n for name, entry in manifest.splits.items()}
    assert sizes == {"train": 12, "valid": 4, "test": 6}
    assert manifest.source["type"] == "url" and manifest.source["local_copy"] is None
    assert [item["name"] for item in manifest.inputs] == ["train.npz", "valid.npz", "test.npz"]
    assert (tmp_path / "datasets" / "tiny_url" / "train.npz").is_file()
    assert len(server.state.requests) == 3
    fetch_dataset(config, tmp_path / "features" / "tiny_url")  # present files: no new request
    assert len(server.state.requests) == 3


def test_url_source_local_copy_is_checked(server, served, tmp_path) -> None:
    _write_npz_bundle(served)
    config = _url_config(server, served)
    copy = tmp_path / "copy"
    copy.mkdir()
    for split in ("train", "valid", "test"):
        (copy / f"{split}.npz").write_bytes((served / "npz" / f"{split}.npz").read_bytes())
    fetch_dataset(config, tmp_path / "store", source_path=copy)
    assert read_manifest(tmp_path / "store").source["local_copy"] == str(copy)
    (copy / "test.npz").write_bytes(b"tampered")
    expected = config.options["files"][2]["sha256"]
    with pytest.raises(DataError, match=f"test.npz: sha256 .* expected {expected[:12]}"):
        fetch_dataset(config, tmp_path / "store2", source_path=copy)
    (copy / "test.npz").unlink()
    with pytest.raises(DataError, match=f"test.npz: not found; .* sha256 {expected}"):
        fetch_dataset(config, tmp_path / "store2", source_path=copy)
    assert server.state.requests == []
    assert not (tmp_path / "store2").exists()


GOOD = {"url": "https://example.org/a.csv", "sha256": "a" * 64, "path": "data/a.csv"}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({**GOOD, "sha256": "abc"}, r"files\[2\]\.sha256: expected 64 hex characters, got 'abc'"),
        ({**GOOD, "url": "ftp://x/a"}, r"files\[2\]\.url: expected an http\(s\):// URL"),
        ({**GOOD, "path": "../a.csv"}, r"files\[2\]\.path: expected a relative path"),
        ({**GOOD, "path": "/etc/a.csv"}, r"files\[2\]\.path: expected a relative path"),
        ({**GOOD, "path": "data/b.csv", "extra": 1}, r"files\[2\]\.extra: unknown key"),
        ({**GOOD, "path": "data/a.csv"}, r"files\[2\]\.path: 'data/a.csv' declared twice"),
    ],
)
def test_url_files_are_validated_naming_the_key(entry, expected) -> None:
    files = [GOOD, {**GOOD, "path": "data/c.csv"}, entry]
    with pytest.raises(ConfigError, match=r"^datasets\.d\." + expected) as info:
        parse_remote_files(files, "datasets.d.files")
    assert "\n" not in str(info.value)


def test_url_source_needs_a_known_format_and_a_file_list(tmp_path) -> None:
    config = DatasetConfig("d", "url", "mosi", {"format": "nope", "files": [GOOD]})
    with pytest.raises(ConfigError, match=r"datasets\.d\.format: unknown format 'nope'"):
        fetch_dataset(config, tmp_path / "store")
    config = DatasetConfig("d", "url", "mosi", {"format": "npz", "files": []})
    with pytest.raises(ConfigError, match=r"datasets\.d\.files: expected a non-empty list"):
        fetch_dataset(config, tmp_path / "store")
    assert os.listdir(tmp_path) == []
