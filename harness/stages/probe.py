"""Stage `probe` (`msabench probe DATASET METHOD`): linear probes of a factorized model's shared
and unique representations for the true latents of a synthetic dataset (harness/evaluation/
probes.py), on the first seed's trained checkpoint; writes results/probes/<dataset>/<method>.*."""

from __future__ import annotations

import logging

import torch

from harness import paths
from harness.config import Params
from harness.data.loading import load_dataset
from harness.data.store import read_manifest
from harness.evaluation import probes
from harness.io_utils import write_json_atomic, write_text_atomic
from harness.provenance import hardware_facts
from harness.tracking import Tracker, log_final, log_text_artifact, standard_tags
from harness.training.checkpoints import load_checkpoint, restore_model

log = logging.getLogger("msabench")


def run(params: Params, dataset: str, method: str) -> dict:
    """Probe `method`'s first-seed model on `dataset`; returns the rows and the separation
    summary (also logged as an MLflow run `probe-<method>`)."""
    store = paths.feature_store(dataset)
    train_latents = probes.load_latents(store, "train")  # fails early without latents
    test_latents = probes.load_latents(store, "test")
    seed = params.seeds[0]
    spec, splits = load_dataset(store, splits=("train", "test"))
    checkpoint = load_checkpoint(paths.run_checkpoint(dataset, method, seed))
    model = restore_model(checkpoint, spec, read_manifest(store).data_hash)
    results = probes.probe_all(
        probes.representations(model, splits["train"]),
        train_latents,
        probes.representations(model, splits["test"]),
        test_latents,
    )
    summary = probes.separation(results)
    metrics = probes.as_metrics(results)
    table = probes.render_markdown(dataset, method, results, summary)
    tags = standard_tags(
        "probe", dataset, method=method, seed=seed, data_hash=checkpoint.data_hash,
        hardware=hardware_facts(torch.device("cpu")),  # the probes run on the CPU
    )  # fmt: skip
    with Tracker(params.tracking_uri).run(
        dataset, f"probe/{dataset}/{method}", f"probe-{method}", tags
    ):
        log_final({k.replace(">", ""): v for k, v in metrics.items()}, prefix="r2_")
        log_text_artifact(table, "probes.md")
    json_path, md_path = paths.probe_files(dataset, method)
    write_json_atomic(json_path, metrics)
    write_text_atomic(md_path, table)
    for m, row in summary.items():
        log.info(
            "probe %s/%s %s: s %.3f (shared) vs %.3f (unique); u %.3f (unique) vs %.3f (shared)",
            method, dataset, m, row["shared_rep->s"], row["unique_rep->s"],
            row["unique_rep->u"], row["shared_rep->u"],
        )  # fmt: skip
    return {"results": probes.to_rows(results), "separation": summary}
