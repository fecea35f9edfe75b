"""Facts recorded with every run: git commit, package versions, the hardware, code hashes."""

from __future__ import annotations

import functools
import hashlib
import platform
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


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name ("AMD EPYC 7B13", "Intel(R) Xeon(R) Processor"); from /proc/cpuinfo
    on Linux, else `platform.processor()`; "unknown" when neither says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def hardware_facts(device: str) -> dict[str, str]:
    """Where a run's numbers were computed, as strings (for the run record and MLflow tags):
    the CPU model, the vector instruction set torch's CPU kernels use (`AVX2`, `AVX512`, ...),
    the OS and machine, and for a CUDA `device` the GPU's name and the CUDA and cuDNN versions.

    CPU results are bitwise repeatable only on the same instruction set (and thread count and
    software): float sums are ordered by the vector width, and on CPUs without AVX-512 torch and
    MKL take other kernels (README, "What is and is not bitwise reproducible")."""
    import torch

    facts = {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index
        facts["gpu"] = torch.cuda.get_device_name(index if index is not None else 0)
        facts["cuda"] = str(torch.version.cuda)
        facts["cudnn"] = str(torch.backends.cudnn.version())
    return facts


def source_hash(*modules: object) -> str:
    """sha256 over the source files of the given modules (to key studies to the code)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(getattr(module, "__file__", "") or "")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
