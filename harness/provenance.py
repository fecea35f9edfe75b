"""Facts recorded with every run: the git commit, package versions and the hardware it ran on
(harness/reports/tables.py states them under each comparison table; harness/code_identity.py
hashes the code a stage runs)."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PACKAGES = ("msabench", "torch", "numpy", "scipy", "pandas", "scikit-learn", "optuna", "mlflow")


# What the pipeline itself writes into tracked files while it runs: `dvc repro` updates dvc.lock
# after every stage and the DVC metrics under results/ are tracked, so they do not make the code
# that produced a run "dirty".
PIPELINE_OUTPUTS = ("dvc.lock", "results")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD's sha, suffixed '-dirty' when tracked files other than the pipeline's own outputs
    (`PIPELINE_OUTPUTS`) differ from it; 'unknown' outside git."""
    excluded = [f":(top,exclude){path}" for path in PIPELINE_OUTPUTS]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", *excluded],
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


def hardware_facts(device: torch.device) -> dict[str, str]:
    """Where a run's numbers were computed, as strings (for the run record and MLflow tags):
    the CPU model, the vector instruction set torch's CPU kernels use (`AVX2`, `AVX512`, ...),
    the OS and machine, and for a CUDA `device` the GPU's name and the CUDA and cuDNN versions.

    CPU results are bitwise repeatable only on the same instruction set (and thread count and
    software): float sums are ordered by the vector width, and on CPUs without AVX-512 torch and
    MKL take other kernels (docs/gpu.md, "What is and is not bitwise reproducible")."""
    import torch

    facts = {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
        facts["cuda"] = str(torch.version.cuda)
        facts["cudnn"] = str(torch.backends.cudnn.version())
    return facts
