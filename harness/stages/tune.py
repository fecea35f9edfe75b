"""Stage `tune` (`msabench tune DATASET METHOD`): tune a method's hyperparameters with Optuna on
the train and validation splits (the test split is never read) and write
results/tuning/<dataset>/<method>/best_params.json, the train stage's input."""

from __future__ import annotations

import logging
from pathlib import Path

from harness import paths
from harness.code_identity import code_digest
from harness.config import Params
from harness.data.loading import load_dataset
from harness.data.store import check_store_kind, read_manifest
from harness.tracking import Tracker
from harness.tuning.study import TuningJob, run_study, write_best_params
from methods import load_method

log = logging.getLogger("msabench")


def run(
    params: Params, dataset: str, method: str, storage: str | None = None, worker: int = 0
) -> Path:
    """Tune `method` on `dataset`; write best_params.json. `storage`: a PostgreSQL URL shared
    by several workers (None: the local journal file); `worker`: this worker's index (sampler
    seed offset, MLflow parent run)."""
    method_cls = load_method(method)
    config = params.dataset(dataset)
    store = paths.feature_store(dataset)
    spec, splits = load_dataset(store, splits=("train", "valid"))  # the test split is not read
    check_store_kind(config.kind, spec.kind, dataset)
    job = TuningJob(
        dataset=dataset,
        method_cls=method_cls,
        method_config=params.method(method),
        spec=spec,
        data_hash=read_manifest(store).data_hash,
        train=splits["train"],
        valid=splits["valid"],
        params=params,
        code=code_digest("tune", (method,)),
    )
    tracker = Tracker(params.tracking_uri)
    result = run_study(job, paths.study_storage(dataset, method), tracker, storage, worker)
    target = paths.best_params_file(dataset, method)
    write_best_params(target, job, result)
    log.info(
        "tuned %s on %s: best valid %s = %.4f (%d complete, %d pruned)",
        method, dataset, params.select_metric_for(dataset), result.best_value, result.n_complete,
        result.n_pruned,
    )  # fmt: skip
    return target
