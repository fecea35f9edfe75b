"""Where every stage reads and writes, relative to the project root (the working directory).
dvc.yaml spells the same paths; tests/test_dvc_layout.py checks that the two agree."""

from __future__ import annotations

from pathlib import Path

FEATURES = Path("features")
RESULTS = Path("results")
DATASETS = Path("datasets")  # user-provided raw feature files, tracked by datasets.dvc


def feature_store(dataset: str) -> Path:
    return FEATURES / dataset


def tuning_dir(dataset: str, method: str) -> Path:
    return RESULTS / "tuning" / dataset / method


def best_params_file(dataset: str, method: str) -> Path:
    return tuning_dir(dataset, method) / "best_params.json"


def study_storage(dataset: str, method: str) -> Path:
    """Optuna journal file; a persistent DVC output so an interrupted study resumes."""
    return RESULTS / "studies" / dataset / f"{method}.journal"


def runs_dir(dataset: str, method: str) -> Path:
    return RESULTS / "runs" / dataset / method


def run_record(dataset: str, method: str, seed: int) -> Path:
    return runs_dir(dataset, method) / f"seed-{seed}.json"


def run_predictions(dataset: str, method: str, seed: int) -> Path:
    return runs_dir(dataset, method) / f"seed-{seed}-test-predictions.csv"


def run_checkpoint(dataset: str, method: str, seed: int) -> Path:
    return runs_dir(dataset, method) / f"seed-{seed}.pt"


def all_runs() -> Path:
    return RESULTS / "runs"


def tables_dir() -> Path:
    return RESULTS / "tables"


def metrics_file() -> Path:
    return RESULTS / "metrics.json"


def probes_dir(dataset: str) -> Path:
    return RESULTS / "probes" / dataset


def probe_files(dataset: str, method: str) -> tuple[Path, Path]:
    """(metrics JSON: flat {representation->target: R^2}, Markdown table)."""
    directory = probes_dir(dataset)
    return directory / f"{method}.json", directory / f"{method}.md"


def robustness_dir(dataset: str) -> Path:
    """The robustness stage's output folder: records.json, tables, figures."""
    return RESULTS / "robustness" / dataset


def robustness_metrics(dataset: str) -> Path:
    """DVC metrics file of the robustness stage: {condition: {method: {metric: mean area}}}."""
    return RESULTS / "robustness" / f"{dataset}.json"


def figures_dir(dataset: str) -> Path:
    """The compare stage's figures and their data for one dataset (seed scores, tuning)."""
    return RESULTS / "figures" / dataset


def ranks_dir() -> Path:
    """The rank stage's output: Friedman/Nemenyi across datasets and the CD diagrams."""
    return RESULTS / "ranks"


def papers_dir() -> Path:
    """Regenerated paper tables, one .md/.tex/.csv per registered table."""
    return RESULTS / "papers"


def train_resume(dataset: str, method: str) -> Path:
    """Seeds finished by a train run that has not completed yet (outside the stage's DVC output,
    which DVC clears before a run); removed when the run completes."""
    return RESULTS / ".resume" / "train" / dataset / method


def jobs_dir(stage: str, dataset: str, method: str | None = None) -> Path:
    """The submitit folder of a stage's cluster jobs: their pickled calls, results and log
    files (`<job id>_0_log.out`, `.err`); not an output, kept until removed by hand."""
    folder = RESULTS / ".jobs" / stage / dataset
    return folder / method if method else folder
