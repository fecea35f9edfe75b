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
    text = text_model_note(records)
    if len(setups) == 1:
        return f"Runs: {next(iter(setups))}.{text}"
    parts = [f"{', '.join(sorted(methods))}: {setup}" for setup, methods in sorted(setups.items())]
    return (
        f"Runs from {len(setups)} different setups, so their numbers are not bitwise "
        f"comparable: {'; '.join(parts)}.{text}"
    )


def text_model_note(records: list[RunResult]) -> str:
    """ " Text model: NAME@REVISION (weights sha256 ...); fine-tuned by ...; ..." for runs on a
    dataset with token ids (empty string without): which model and how each method read it."""
    models: dict[str, dict[str, set[str]]] = {}
    for record in records:
        facts = record.text_model
        if facts:
            model = f"{facts['name']}@{facts['revision']} (weights sha256 {facts['sha256'][:12]})"
            models.setdefault(model, {}).setdefault(facts["encoder"], set()).add(record.method)
    parts = []
    for model, by_encoder in sorted(models.items()):
        uses = "; ".join(
            f"{ENCODER_USE[encoder]} by {', '.join(sorted(methods))}"
            for encoder, methods in sorted(by_encoder.items())
        )
        parts.append(f" Text model: {model}; {uses}.")
    return "".join(parts)


ENCODER_USE = {
    "fine-tuned": "fine-tuned",
    "frozen": "frozen (run at train time)",
    "features": "its frozen token states read as features",
}


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
