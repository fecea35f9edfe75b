"""The paragraph under a comparison table saying where its runs were computed, from the facts
each `RunResult` records (harness/provenance.py gathers them)."""

from __future__ import annotations

from harness.records import RunResult


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
