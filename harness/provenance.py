"""Facts recorded with every run: git commit, package versions, code hashes."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("msabench", "torch", "numpy", "scipy", "pandas", "scikit-learn", "optuna", "mlflow")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's sha, suffixed '-dirty' when tracked files differ; 'unknown' outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def source_hash(*modules: object) -> str:
    """sha256 over the source files of the given modules (to key studies to the code)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(getattr(module, "__file__", "") or "")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
