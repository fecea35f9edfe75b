"""Every configuration mistake is an error: a corpus of misspelt keys and mistyped values, one
of each per section of params.yaml, each with its whole one-line message (the file, the full key
path, what is allowed or expected, and for a misspelt key the closest allowed one); the method
sections through the methods' own checks; and the CLI stops before any stage starts work."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config import parse_params
from harness.config.methods import check_methods
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((REPO / "params.yaml").read_text())
TOP = (
    "amp, benchmark, compare, compile_mode, datasets, device, eval_batch_size, executor, "
    "methods, mlflow, num_threads, paper, probe, "
)
SYNTHETIC = (
    "annotator_std, feature_dims, interaction_weight, max_lengths, max_shift_fraction, "
    "min_length_fraction, n_annotators, n_test, n_train, n_valid, noise_dims, noise_std, "
    "nuisance_dim, seed, shared_dim, unique_dim"
)
METHOD_NAMES = (
    "almt, audio_only, cenet, fine, fsrf, ir_svr, late_transformer, lf_dnn, lmf, misa, mmim, "
    "mmmie, mult, ridge, self_mm, tetfn, text_only, tfn, tfr_net, vision_only"
)

# (path of the key to misspell, the misspelling, the whole message after "params.yaml: ")
MISSPELT = [
    ((), "seed", f"seed: unknown key; allowed: {TOP}robustness, seeds, train, tune "
     "(did you mean 'seeds'?)"),
    (("benchmark",), "method", "benchmark.method: unknown key; allowed: datasets, methods "
     "(did you mean 'methods'?)"),
    (("mlflow",), "tracking_url", "mlflow.tracking_url: unknown key; allowed: tracking_uri "
     "(did you mean 'tracking_uri'?)"),
    (("datasets", "synth"), "knd", "datasets.synth.knd: unknown key; allowed: group, kind, "
     "source, standardize, synthetic (did you mean 'kind'?)"),
    (("datasets", "synth", "synthetic"), "n_trian", "datasets.synth.synthetic.n_trian: unknown "
     f"key; allowed: {SYNTHETIC} (did you mean 'n_train'?)"),
    (("datasets", "mosi_bclstm"), "valid_fracton", "datasets.mosi_bclstm.valid_fracton: unknown "
     "key; allowed: files, format, group, kind, max_text_tokens, source, split, split_seed, "
     "standardize, text, text_model, valid_fraction (did you mean 'valid_fraction'?)"),
    (("datasets", "mosi_bclstm", "files", 0), "sha", "datasets.mosi_bclstm.files[0].sha: "
     "unknown key; allowed: path, sha256, url (did you mean 'sha256'?)"),
    (("methods",), "tfm", f"methods.tfm: unknown method 'tfm' (did you mean 'tfn'?); valid "
     f"methods: {METHOD_NAMES}"),
    (("methods", "tfn"), "hparam", "methods.tfn.hparam: unknown key; allowed: hparams, "
     "search_space (did you mean 'hparams'?)"),
    (("tune",), "n_trails", "tune.n_trails: unknown key; allowed: enqueue_defaults, max_epochs, "
     "n_trials, patience, pruner, sampler_seed (did you mean 'n_trials'?)"),
    (("tune", "pruner"), "n_startup", "tune.pruner.n_startup: unknown key; allowed: kind, "
     "n_startup_trials, n_warmup_steps (did you mean 'n_startup_trials'?)"),
    (("train",), "max_epoch", "train.max_epoch: unknown key; allowed: max_epochs, patience, "
     "runs_per_gpu, select_metric, select_metric_by_kind, workers (did you mean 'max_epochs'?)"),
    (("probe",), "method", "probe.method: unknown key; allowed: datasets, methods (did you mean "
     "'methods'?)"),
    (("robustness",), "missing_seeds", "robustness.missing_seeds: unknown key; allowed: "
     "missing_seed, runs_per_gpu, workers (did you mean 'missing_seed'?)"),
    (("compare",), "ci_resample", "compare.ci_resample: unknown key; allowed: alpha, aso, "
     "aso_bootstrap, ci_resamples, confidence, flag_constant_ratio, flag_outlier_level, "
     "sample_resamples, seed, simple_baselines (did you mean "
     "'ci_resamples'?)"),
    (("executor",), "tune_job", "executor.tune_job: unknown key; allowed: cluster, kind, "
     "max_retries, poll_s, slurm, study_storage, tune_jobs (did you mean 'tune_jobs'?)"),
    (("executor", "slurm"), "gpu_per_job", "executor.slurm.gpu_per_job: unknown key; allowed: "
     "account, additional, cpus_per_job, gpus_per_job, mem_gb, partition, time_min (did you "
     "mean 'gpus_per_job'?)"),
    (("paper",), "table", "paper.table: unknown key; allowed: datasets, tables (did you mean "
     "'tables'?)"),
    (("paper", "datasets"), "MOSEi", "paper.datasets.MOSEi: unknown key; allowed: CH-SIMS, "
     "MOSEI, MOSI, MUStARD, UR-FUNNY (did you mean 'MOSEI'?)"),
]  # fmt: skip

# (path of the value, the wrong value, the whole message after "params.yaml: ")
MISTYPED = [
    (("num_threads",), "two", "num_threads: expected an integer, got 'two'"),
    (("eval_batch_size",), 0, "eval_batch_size: expected a positive integer, got 0"),
    (("compile_mode",), False, "compile_mode: expected one of none, default, reduce-overhead, "
     "max-autotune, got False"),  # what YAML makes of `compile_mode: off`
    (("benchmark", "datasets"), "synth", "benchmark.datasets: expected a list of names, got "
     "'synth'"),
    (("mlflow", "tracking_uri"), 5, "mlflow.tracking_uri: expected a non-empty string, got 5"),
    (("datasets", "synth", "kind"), "imdb", "datasets.synth.kind: expected one of mosi, mosei, "
     "sims, binary, got 'imdb'"),
    (("datasets", "synth", "synthetic", "n_train"), -5, "datasets.synth.synthetic.n_train: "
     "expected a positive integer, got -5"),
    (("datasets", "mosi_bclstm", "valid_fraction"), 1.5, "datasets.mosi_bclstm.valid_fraction: "
     "expected a number between 0 and 1, got 1.5"),
    (("datasets", "mosi_bclstm", "files", 0, "sha256"), "abc", "datasets.mosi_bclstm.files[0]"
     ".sha256: expected 64 hex characters, got 'abc'"),
    (("methods", "tfn", "hparams"), ["post_fusion_dim"], "methods.tfn.hparams: expected a "
     "mapping, got ['post_fusion_dim']"),
    (("tune", "n_trials"), 0, "tune.n_trials: expected a positive integer, got 0"),
    (("executor", "kind"), "pbs", "executor.kind: expected one of local, slurm, got 'pbs'"),
    (("tune", "pruner", "kind"), "hyperband", "tune.pruner.kind: expected one of median, none, "
     "got 'hyperband'"),
    (("train", "select_metric"), "acc9", "train.select_metric: unknown metric 'acc9' (did you "
     "mean 'acc7'?); valid names: acc2, acc2_has0, acc2_non0, acc3, acc5, acc7, accuracy, auc, "
     "corr, f1, f1_has0, f1_non0, f1_weighted, mae, precision, recall"),
    (("train", "select_metric_by_kind"), {"binary": "mae"}, "train.select_metric_by_kind.binary: "
     "expected one of accuracy, f1_weighted, precision, recall, auc, got 'mae'"),
    (("train", "select_metric_by_kind"), {"imdb": "mae"}, "train.select_metric_by_kind.imdb: "
     "not a dataset kind; expected one of mosi, mosei, sims, binary"),
    (("probe", "methods"), "fine", "probe.methods: expected a list of names, got 'fine'"),
    (("robustness", "workers"), 0, "robustness.workers: expected a positive integer, got 0"),
    (("train", "runs_per_gpu"), 0, "train.runs_per_gpu: expected a positive integer, got 0"),
    (("compare", "alpha"), 2, "compare.alpha: expected a number between 0 and 1, got 2"),
    (("paper", "tables"), ["fine-mosi"], "paper.tables: unknown paper table 'fine-mosi' (did you "
     "mean 'fine-mosi-mosei'?); valid paper tables: fine-ch-sims, fine-mosi-mosei, "
     "fine-ur-funny, fsrf-mosei-ch-sims, ir-svr-mosi-mosei, ir-svr-ur-funny, mmmie-mosi-mosei, "
     "mmsa-ch-sims, mmsa-mosei, mmsa-mosi, mustard-text"),
    (("paper", "datasets", "MOSI"), 5, "paper.datasets.MOSI: expected a non-empty string, got 5"),
]  # fmt: skip

# the methods' sections, checked by the methods themselves (`check_methods`)
METHOD_SECTIONS = [
    (("methods", "tfn", "hparams", "post_fusion_dim"), "big", "methods.tfn.hparams."
     "post_fusion_dim: expected an integer, got 'big'"),
    (("methods", "tfn", "hparams", "post_fusion_dimm"), 3, "methods.tfn.hparams.post_fusion_dimm"
     ": unknown hyperparameter of tfn; allowed: adam_epsilon, audio_dropout, audio_hidden, "
     "batch_size, bert_no_decay_norms, feature_steps, grad_accumulation, "
     "grad_accumulation_mode, grad_clip, grad_clip_mode, learning_rate, learning_rate_bert, "
     "lr_scheduler, optimizer, output_head, output_range, post_fusion_dim, post_fusion_dropout, "
     "scheduler_epochs, scheduler_factor, scheduler_patience, task_loss, "
     "text_dropout, text_encoder, text_finetune, text_hidden, text_out, vision_dropout, "
     "vision_hidden, weight_decay, weight_decay_bert (did you mean 'post_fusion_dim'?)"),
    (("methods", "fsrf", "hparams", "fusion_heads"), 5, "methods.fsrf.hparams.fusion_heads: "
     "expected a positive divisor of model_dim=32, got 5"),
    (("methods", "tfn", "search_space", "learning_rate"), {"low": "x"}, "methods.tfn."
     "search_space.learning_rate.low: expected a number, got 'x'"),
    (("methods", "tfn", "search_space", "learning_rat"), {"low": 0.1}, "methods.tfn."
     "search_space.learning_rat: not a tunable hyperparameter; expected one of audio_hidden, "
     "learning_rate, post_fusion_dim, post_fusion_dropout, weight_decay (did you mean "
     "'learning_rate'?)"),
]  # fmt: skip


def _node(raw, path):
    for part in path:
        raw = raw[part]
    return raw


def _misspelt(path, wrong) -> dict:
    """The params with the key at `path` + its correct name renamed to `wrong` (or, where the
    section has no key close to it, with `wrong` added)."""
    raw = copy.deepcopy(BASE)
    node = _node(raw, path)
    correct = {
        "seed": "seeds", "method": "methods", "tracking_url": "tracking_uri", "knd": "kind",
        "n_trian": "n_train", "valid_fracton": "valid_fraction", "sha": "sha256",
        "hparam": "hparams", "n_trails": "n_trials", "n_startup": "n_startup_trials",
        "max_epoch": "max_epochs", "missing_seeds": "missing_seed", "ci_resample": "ci_resamples",
        "table": "tables", "tfm": "tfn", "MOSEi": "MOSEI", "tune_job": "tune_jobs",
        "gpu_per_job": "gpus_per_job",
    }[wrong]  # fmt: skip
    node[wrong] = node.pop(correct) if correct in node else {}
    return raw


def _message(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        check_methods(parse_params(raw), ["tfn", "fsrf"])
    return str(info.value)


def test_the_corpus_covers_every_section() -> None:
    covered = {path[0] if path else wrong for path, wrong, _ in MISSPELT}
    scalars = {"seeds", "device", "amp", "num_threads", "eval_batch_size", "compile_mode"}
    assert covered == set(BASE) - scalars | {"seed"}
    assert {path[0] for path, _, _ in MISTYPED} == set(BASE) - {"seeds", "device", "amp"}


@pytest.mark.parametrize(("path", "wrong", "expected"), MISSPELT, ids=lambda v: str(v)[:30])
def test_a_misspelt_key_is_an_error_naming_it_and_the_closest_allowed_key(path, wrong, expected):
    message = _message(_misspelt(path, wrong))
    assert message == f"params.yaml: {expected}"
    assert "\n" not in message


@pytest.mark.parametrize(
    ("path", "value", "expected"), MISTYPED + METHOD_SECTIONS, ids=lambda v: str(v)[:30]
)
def test_a_mistyped_value_is_an_error_naming_the_full_key(path, value, expected) -> None:
    raw = copy.deepcopy(BASE)
    _node(raw, path[:-1])[path[-1]] = value
    message = _message(raw)
    assert message == f"params.yaml: {expected}"
    assert "\n" not in message


def test_the_cli_stops_on_a_method_section_before_the_stage_starts(tmp_path, capsys) -> None:
    raw = copy.deepcopy(BASE)
    raw["methods"]["fsrf"]["hparams"]["fusion_heads"] = 5
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw), encoding="utf-8")
    # no feature store exists: the error is the params', raised before the stage reads data
    assert main(["--params", str(params), "tune", "synth", "fsrf"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"msabench: error: {params}: methods.fsrf.hparams.fusion_heads: expected a positive "
        "divisor of model_dim=32, got 5\n"
    )
    assert main(["--params", str(params), "check"]) == 2
    assert main(["--params", str(REPO / "params.yaml"), "check"]) == 0
