"""Facts recorded with every run: git commit, package versions, the hardware, code hashes; and
the provenance line a comparison table states from its runs' records."""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from harness.records import RunResult

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
    MKL take other kernels (README, "What is and is not bitwise reproducible")."""
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


def provenance_note(records: list[RunResult]) -> str:
    """The paragraph under a Markdown table saying where its runs were computed: the code
    commit, the device, the CPU and the instruction set of torch's CPU kernels, torch's version.
    Runs from more than one such setup are listed by setup with their methods: their numbers
    are not bitwise comparable (a float sum's order follows the vector width), and a tuning
    study can amplify a last-bit difference into other hyperparameters."""
    setups: dict[str, set[str]] = {}
    for record in records:
        setups.setdefault(_setup(record), set()).add(record.method)
    if len(setups) == 1:
        return f"Runs: {next(iter(setups))}."
    parts = [f"{', '.join(sorted(methods))}: {setup}" for setup, methods in sorted(setups.items())]
    return (
        f"Runs from {len(setups)} different setups, so their numbers are not bitwise "
        f"comparable: {'; '.join(parts)}."
    )


def _setup(record: RunResult) -> str:
    facts = record.hardware
    device = record.device
    if "gpu" in facts:
        device += f" ({facts['gpu']}, CUDA {facts['cuda']})"
    cpu = (
        f"{facts['cpu']}, {facts['cpu_capability']} kernels"
        if "cpu" in facts
        else "hardware not recorded"
    )
    torch_version = record.package_versions.get("torch", "unknown")
    return f"code {record.git_commit}, {device}, {cpu}, torch {torch_version}"


def source_hash(*modules: object) -> str:
    """sha256 over the source files of the given modules (to key studies to the code)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(getattr(module, "__file__", "") or "")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
