"""The sections of params.yaml as frozen dataclasses: every key the pipeline reads, its type, its
check and its default, each default in this one place (a field without one is required).

`harness.schema.parse_section` builds them and refuses unknown keys. The dataset and method
sections are in harness/data/declaration.py and params.py; docs/configuration.md describes
every key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.schema import (
    check_fields,
    checked,
    no_repeats,
    non_empty,
    non_negative,
    positive,
    positive_number,
    probability,
)

# the simple baselines every table is measured against (issue 21): unimodal, a late-fusion
# Transformer, a linear floor
SIMPLE_BASELINES = ("text_only", "audio_only", "vision_only", "late_transformer", "ridge")


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """What `dvc repro` runs: every dataset x every method."""

    datasets: tuple[str, ...] = checked(check=non_empty)
    methods: tuple[str, ...] = checked(check=non_empty)


@dataclass(frozen=True, kw_only=True)
class MlflowConfig:
    tracking_uri: str = "sqlite:///mlflow.db"


@dataclass(frozen=True, kw_only=True)
class MethodConfig:
    """`methods.<name>`: fixed hyperparameters (not tuned) and search-space overrides; both are
    checked against the method itself when a stage that runs it reads the params
    (harness/config/methods.py)."""

    name: str = field(default="", metadata={"derived": True})  # the section's key
    hparams: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PrunerConfig:
    """`tune.pruner`: "median" stops a trial whose validation score at an epoch is worse than
    the median of earlier trials there (after `n_startup_trials` trials and `n_warmup_steps`
    epochs); "none" runs every trial to its end."""

    kind: Literal["median", "none"] = "median"
    n_startup_trials: int = checked(3, non_negative)
    n_warmup_steps: int = checked(3, non_negative)


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    n_trials: int = checked(check=positive)  # per (dataset, method)
    max_epochs: int = checked(check=positive)
    patience: int = checked(check=positive)
    enqueue_defaults: bool = True  # trial 0 = the method's defaults, so tuning never ends worse
    sampler_seed: int = checked(42, non_negative)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    max_epochs: int = checked(check=positive)
    patience: int = checked(check=positive)
    select_metric: str = "mae"  # validation metric for early stopping and tuning
    # per dataset kind, a selection metric that replaces `select_metric` for datasets of that
    # kind (a classification kind has no MAE)
    select_metric_by_kind: dict[str, str] = field(default_factory=lambda: {"binary": "f1_weighted"})
    workers: int = checked(1, positive)  # processes training seeds at once (CPU)
    runs_per_gpu: int = checked(1, positive)  # on CUDA: seed processes packed onto each GPU


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """`dvc repro`'s probe stage: these factorized methods on these synthetic datasets."""

    datasets: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RobustnessConfig:
    """The missing-modality protocol's evaluation (harness/evaluation/robustness.py)."""

    missing_seed: int = checked(0, non_negative)  # fixes every mask: the same for every method
    workers: int = checked(1, positive)  # processes evaluating trained models at once (CPU)
    runs_per_gpu: int = checked(1, positive)  # on CUDA: evaluating processes on each GPU


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """How a comparison table's statistics are computed (harness/statistics/comparison.py);
    `seed` drives every resampling, so the same records give the same tables."""

    alpha: float = checked(0.05, probability)  # significance level after Holm correction
    seed: int = checked(0, non_negative)
    confidence: float = checked(0.95, probability)
    ci_resamples: int = checked(10_000, positive)  # bootstrap CI of the mean over seeds
    aso: bool = True  # Almost Stochastic Order against the best method
    aso_bootstrap: int = checked(1000, positive)  # ASO's bootstrap iterations (deepsig's)
    sample_resamples: int = checked(1000, positive)  # paired bootstrap over test samples
    # flagged seeds (harness/statistics/seed_flags.py): predictions' std below this fraction
    # of the truths' ("constant"); a MAE/Corr outside this prediction interval of the others
    flag_constant_ratio: float = checked(0.05, probability)
    flag_outlier_level: float = checked(0.999, probability)
    # the methods that are the bar: every other method is tested against the best of those in
    # the run, per metric ("beats the best baseline" marks); a name not in the run is absent
    simple_baselines: tuple[str, ...] = checked(SIMPLE_BASELINES, no_repeats)

    def __post_init__(self) -> None:
        check_fields(self)  # also when built in code, not only from params.yaml

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class SlurmConfig:
    """`executor.slurm`: the resources of every job the heavy stages submit (submitit's
    `slurm_*` parameters; `additional`: any further sbatch option, e.g. {qos: high})."""

    partition: str | None = None  # None: the cluster's default partition
    account: str | None = None
    time_min: int = checked(240, positive)  # each job's time limit, minutes
    gpus_per_job: int = checked(0, non_negative)
    cpus_per_job: int = checked(2, positive)
    mem_gb: int | None = None  # None: the partition's default memory
    additional: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ExecutorConfig:
    """Where the heavy stages (tune, train, robustness) do their work (harness/execution/):
    `local`, in the stage's own process (and its `train.workers` / `robustness.workers`
    processes); `slurm`, as submitit jobs the stage submits and waits for: one job per
    (dataset, method) training with its seeds packed in, `tune_jobs` workers joining one study,
    one robustness job per dataset. What the jobs write is what a local run writes."""

    kind: Literal["local", "slurm"] = "local"
    # submitit's executor for kind slurm: auto = SLURM where `srun` exists, else its local one
    cluster: Literal["auto", "slurm", "local"] = "auto"
    tune_jobs: int = checked(1, positive)  # worker jobs per study (more than 1: PostgreSQL)
    study_storage: str | None = None  # the PostgreSQL URL those workers share
    max_retries: int = checked(2, non_negative)  # resubmissions of a failed or preempted job
    poll_s: float = checked(5.0, positive_number)  # how often the stage checks its jobs
    slurm: SlurmConfig = field(default_factory=SlurmConfig)


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    """Paper-table regeneration (harness/papers/): which registered tables the paper stage
    writes, and which project dataset stands for each paper dataset (None: none here)."""

    tables: tuple[str, ...] = ()
    datasets: dict[str, str | None] = field(default_factory=dict)
