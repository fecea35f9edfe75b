"""The canonical on-disk feature store, the one form every dataset reader writes.

Layout of `<store>/`:
    manifest.json            what is stored, with hashes (see `Manifest`)
    train.npz, valid.npz, test.npz
        "<m>"          float32 (N, T_m, D_m), zeros at t >= length
        "<m>_lengths"  int64 (N,), in [1, T_m]
        "labels"       float32 (N,), within the kind's label range
        "ids"          unicode (N,), unique within the store
        "text_tokens"  int64 (N, 3, L), when the source has token ids (harness/data/tokens.py;
                       the manifest's `text_tokens` names their text model)
    <extra>.npz              optional named groups of arrays (e.g. latents.npz: "train/shared", ...)

The .npz files are written uncompressed (so training can memory-map them, see mmap_npz.py) with
fixed zip timestamps, so the same arrays give the same bytes and `data_hash` on every rewrite.
A store is written into a temporary directory and renamed into place, never half-written, after
every split passes the checks in split_arrays.py."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.spec import DATASET_KINDS, LABEL_RANGES, MODALITIES, SPLITS, DataSpec
from harness.data.split_arrays import SplitArrays, check_extras, check_splits
from harness.data.tokens import TokenInfo
from harness.errors import DataError
from harness.io_utils import atomic_directory, sha256_file, write_json_atomic

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class SplitEntry:
    """A split's manifest entry: sample count, file name, sha256 and summary statistics."""

    n: int
    file: str
    sha256: str
    length_stats: dict[str, dict[str, float]]  # modality -> {min, max, mean}
    label_stats: dict[str, float]  # {min, max, mean}


@dataclass(frozen=True)
class Manifest:
    """The contents of manifest.json."""

    format_version: int
    dataset: str
    kind: str
    label_range: tuple[float, float]
    modalities: tuple[str, ...]
    feature_dims: dict[str, int]
    max_lengths: dict[str, int]
    splits: dict[str, SplitEntry]
    source: dict[str, Any]  # e.g. {"type": "synthetic", "config": {...}}
    inputs: list[dict[str, str]]  # [{name, sha256}] of the input files or config
    extras: dict[str, dict[str, str]]  # name -> {file, sha256}
    data_hash: str  # sha256 over the stored files' hashes (see `combine_hashes`)
    text_tokens: TokenInfo | None = None  # the stored token ids' text model, if any
    # whether `load_dataset` z-scores the features (train statistics) by default: the dataset's
    # `standardize` setting; stores written before the setting existed were always standardised
    standardize: bool = True

    def data_spec(self) -> DataSpec:
        return DataSpec(
            kind=self.kind,
            feature_dims=dict(self.feature_dims),
            max_lengths=dict(self.max_lengths),
            label_range=self.label_range,
            modalities=self.modalities,
            tokens=self.text_tokens,
        )

    def file_hashes(self) -> dict[str, str]:
        """Stored file name -> sha256, for every split and extras file."""
        hashes = {entry.file: entry.sha256 for entry in self.splits.values()}
        hashes.update({extra["file"]: extra["sha256"] for extra in self.extras.values()})
        return hashes

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["label_range"] = list(self.label_range)
        payload["modalities"] = list(self.modalities)
        payload["text_tokens"] = None if self.text_tokens is None else self.text_tokens.to_dict()
        return payload

    @classmethod
    def from_dict(cls, payload: Any, where: str = MANIFEST_NAME) -> Manifest:
        """Parse a manifest payload; a malformed one raises DataError naming `where`."""
        if not isinstance(payload, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(payload).__name__}")
        # stores written before token ids were kept, or before `standardize`, lack these
        optional = {"text_tokens", "standardize"}
        missing = [n for n in cls.__dataclass_fields__ if n not in payload and n not in optional]
        if missing:
            raise DataError(f"{where}: missing key(s) {', '.join(missing)}; re-run fetch")
        if payload["format_version"] != FORMAT_VERSION:
            version = payload["format_version"]
            raise DataError(f"{where}: format_version {version!r} unsupported, expected 1")
        try:
            low, high = payload["label_range"]
            manifest = cls(
                **{
                    **payload,
                    "label_range": (float(low), float(high)),
                    "modalities": tuple(payload["modalities"]),
                    "splits": {k: SplitEntry(**v) for k, v in payload["splits"].items()},
                    "text_tokens": _token_info(payload.get("text_tokens"), where),
                }
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{where}: malformed manifest ({exc})") from None
        _check_manifest(manifest, where)
        return manifest


def _token_info(payload: Any, where: str) -> TokenInfo | None:
    return None if payload is None else TokenInfo.from_dict(payload, where)


def _check_manifest(manifest: Manifest, where: str) -> None:
    if manifest.kind not in DATASET_KINDS:
        raise DataError(f"{where}: kind {manifest.kind!r} unknown, expected one of {DATASET_KINDS}")
    if sorted(manifest.splits) != sorted(SPLITS):
        raise DataError(f"{where}: splits {sorted(manifest.splits)}, expected {list(SPLITS)}")
    for m in manifest.modalities:
        if m not in MODALITIES or m not in manifest.feature_dims or m not in manifest.max_lengths:
            raise DataError(f"{where}: modality {m!r} unknown or without feature_dims/max_lengths")


def combine_hashes(file_hashes: dict[str, str]) -> str:
    """sha256 over "file:sha256" lines of every stored file, in sorted file order."""
    lines = "\n".join(f"{name}:{file_hashes[name]}" for name in sorted(file_hashes))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _json_value(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what}: expected JSON-serialisable values ({exc})") from None


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed .npz (readable by np.load) whose bytes depend only on `arrays`."""
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            with archive.open(info, mode="w", force_zip64=True) as handle:
                array = np.ascontiguousarray(arrays[key])
                np.lib.format.write_array(handle, array, allow_pickle=False)


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"min": values.min().item(), "max": values.max().item(), "mean": float(values.mean())}


def _write_split(directory: Path, name: str, arrays: SplitArrays) -> SplitEntry:
    path = directory / f"{name}.npz"
    write_npz(path, arrays.to_npz_arrays())
    return SplitEntry(
        n=arrays.n,
        file=path.name,
        sha256=sha256_file(path),
        length_stats={m: _summary(lengths) for m, lengths in arrays.lengths.items()},
        label_stats=_summary(arrays.labels.astype(np.float64)),
    )


def write_store(
    directory: str | Path,
    dataset: str,
    kind: str,
    splits: dict[str, SplitArrays],
    source: dict[str, Any],
    inputs: list[dict[str, str]],
    extras: dict[str, dict[str, np.ndarray]] | None = None,
    tokens: TokenInfo | None = None,
    standardize: bool = True,
) -> Manifest:
    """Validate and write a complete store at `directory` atomically; return its manifest.
    `tokens` names the text model of the splits' token ids (none without it); `standardize`
    (the dataset's setting) is recorded for `load_dataset`."""
    if kind not in LABEL_RANGES:
        raise DataError(f"kind: got {kind!r}, expected one of {sorted(LABEL_RANGES)}")
    if not isinstance(dataset, str) or not dataset:
        raise DataError(f"dataset: expected a non-empty name, got {dataset!r}")
    check_splits(splits, kind, tokens)
    extras = extras or {}
    check_extras(extras)
    source, inputs = _json_value(source, "source"), _json_value(inputs, "inputs")
    first = splits[SPLITS[0]].features
    modalities = tuple(m for m in MODALITIES if m in first)
    with atomic_directory(directory) as tmp:
        entries = {name: _write_split(tmp, name, splits[name]) for name in SPLITS}
        extra_files = {}
        for name in sorted(extras):
            write_npz(tmp / f"{name}.npz", extras[name])
            extra_files[name] = {"file": f"{name}.npz", "sha256": sha256_file(tmp / f"{name}.npz")}
        file_hashes = {entry.file: entry.sha256 for entry in entries.values()}
        file_hashes.update({extra["file"]: extra["sha256"] for extra in extra_files.values()})
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            dataset=dataset,
            kind=kind,
            label_range=LABEL_RANGES[kind],
            modalities=modalities,
            feature_dims={m: int(first[m].shape[2]) for m in modalities},
            max_lengths={m: int(first[m].shape[1]) for m in modalities},
            splits=entries,
            source=source,
            inputs=inputs,
            extras=extra_files,
            data_hash=combine_hashes(file_hashes),
            text_tokens=tokens,
            standardize=bool(standardize),
        )
        write_json_atomic(tmp / MANIFEST_NAME, manifest.to_dict())
    return manifest


def read_manifest(directory: str | Path) -> Manifest:
    """Read `<directory>/manifest.json`; raise a one-line DataError if missing or malformed."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: not found; run `msabench fetch {Path(directory).name}` first")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return Manifest.from_dict(payload, where=str(path))


def check_store_kind(declared: str, stored: str, dataset: str) -> None:
    """DataError when the store at features/<dataset> was built for another dataset kind than
    params.yaml now declares (a stale store: fetch again)."""
    if declared != stored:
        raise DataError(
            f"features/{dataset}: stored kind '{stored}' differs from params.yaml "
            f"datasets.{dataset}.kind '{declared}'; run `msabench fetch {dataset}` again"
        )


def verify_store(directory: str | Path) -> Manifest:
    """Re-hash every stored file against the manifest; raise DataError on any difference."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    hint = f"re-run `msabench fetch {manifest.dataset}`"
    for file, expected in sorted(manifest.file_hashes().items()):
        path = directory / file
        if not path.is_file():
            raise DataError(f"{path}: listed in the manifest but missing; {hint}")
        actual = sha256_file(path)
        if actual != expected:
            raise DataError(
                f"{path}: sha256 {actual[:12]}... differs from the manifest's {expected[:12]}...; "
                f"{hint}"
            )
    if combine_hashes(manifest.file_hashes()) != manifest.data_hash:
        raise DataError(f"{directory / MANIFEST_NAME}: data_hash does not match its files; {hint}")
    return manifest


def load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: not found; the feature store is incomplete, re-run fetch")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable .npz ({exc})") from None


def read_extras(
    directory: str | Path, name: str, manifest: Manifest | None = None
) -> dict[str, np.ndarray]:
    """The arrays of extras file `name` (e.g. "latents"), keyed as written."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    if name not in manifest.extras:
        raise DataError(f"extras {name!r} not in the store; available: {sorted(manifest.extras)}")
    return load_npz(directory / manifest.extras[name]["file"])
