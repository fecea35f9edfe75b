"""The robustness protocol on trained checkpoints: checkpoints round-trip, the sweep's records
(rate 0 = plain evaluation, composed inter-modal curves = direct evaluation, same masks for
every model and run), the area under the rate curve, and the area tables."""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data.loading import load_dataset
from harness.data.missing import INTER_PATTERNS, RATES, MissingMasks
from harness.data.store import read_manifest
from harness.errors import ConfigError, DataError
from harness.evaluation.robustness import (
    CONDITIONS,
    INTRA,
    RobustnessTask,
    condition_name,
    evaluate_checkpoint,
)
from harness.records import RobustnessRecord
from harness.records.robustness import load_records, save_records
from harness.reports.robustness import (
    area_frames,
    area_under_curve,
    areas,
    curve_frame,
    lost_area_frames,
    render_report,
)
from harness.training.checkpoints import Checkpoint, load_checkpoint, restore_model, save_checkpoint
from harness.training.loop import LoopConfig, RunContext, build_model, evaluate, fit, predict
from harness.workers import map_in_order
from methods import METHODS


@pytest.fixture(scope="module")
def trained(tiny_store: Path, tmp_path_factory) -> dict:
    """Checkpoints of lf_dnn and mmmie (two seeds) trained 2 epochs on the tiny store."""
    spec, splits = load_dataset(tiny_store)
    data_hash = read_manifest(tiny_store).data_hash
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for method in ("lf_dnn", "mmmie"):
        cls = METHODS.get(method)
        hparams = cls.resolve_hparams(spec.kind, {"batch_size": 16})
        for seed in (1, 2):
            model = build_model(cls, hparams, spec, seed)
            loop = LoopConfig(max_epochs=2, patience=2, progress=False)
            fit(
                model,
                splits["train"],
                splits["valid"],
                loop,
                RunContext("tiny", method, seed),
                seed,
            )
            path = folder / f"{method}-{seed}.pt"
            save_checkpoint(
                path,
                Checkpoint(method, "tiny", seed, asdict(hparams), data_hash, model.state_dict()),
            )
            paths[method, seed] = path
    return {"paths": paths, "spec": spec, "splits": splits, "hash": data_hash}


def _task(trained, store, method="lf_dnn", seed=1, missing_seed=0) -> RobustnessTask:
    return RobustnessTask("tiny", method, seed, trained["paths"][method, seed], store,
                          missing_seed, 16, "cpu", 1)  # fmt: skip


def test_checkpoint_round_trip_predicts_identically(trained) -> None:
    checkpoint = load_checkpoint(trained["paths"]["mmmie", 1])
    model = restore_model(checkpoint, trained["spec"], trained["hash"])
    again = restore_model(
        load_checkpoint(trained["paths"]["mmmie", 1]), trained["spec"], trained["hash"]
    )
    test = trained["splits"]["test"]
    np.testing.assert_array_equal(predict(model, test, 8, "cpu"), predict(again, test, 8, "cpu"))
    # another batch size may pick another GEMM/LSTM kernel blocking: equal to float32 rounding
    np.testing.assert_allclose(
        predict(model, test, 8, "cpu"), predict(again, test, 32, "cpu"), rtol=1e-5, atol=1e-6
    )


def test_broken_checkpoints_fail_with_one_line_naming_the_file(trained, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"broken\.pt: not a readable checkpoint") as info:
        load_checkpoint(broken)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")
    checkpoint = load_checkpoint(trained["paths"]["lf_dnn", 1])
    with pytest.raises(DataError, match="re-run the train stage"):
        restore_model(checkpoint, trained["spec"], "0" * 64)
    truncated = replace(checkpoint, state=dict(list(checkpoint.state.items())[1:]))
    with pytest.raises(DataError, match="weights do not fit lf_dnn"):
        restore_model(truncated, trained["spec"], trained["hash"])
    with pytest.raises(ConfigError, match="hparams.* unknown hyperparameter of mmmie"):
        restore_model(replace(checkpoint, method="mmmie"), trained["spec"], trained["hash"])


def test_sweep_covers_every_condition_and_rate_and_rate_zero_is_plain_evaluation(
    trained, tiny_store
) -> None:
    records = evaluate_checkpoint(_task(trained, tiny_store))
    assert [(r.condition, r.rate) for r in records] == [(c, r) for c in CONDITIONS for r in RATES]
    model = restore_model(
        load_checkpoint(trained["paths"]["lf_dnn", 1]), trained["spec"], trained["hash"]
    )
    plain, _ = evaluate(model, trained["splits"]["test"], 16, "cpu")
    for record in records:
        if record.rate == 0.0:
            assert record.metrics == plain, record.condition
    intra = [r.metrics["mae"] for r in records if r.condition == INTRA]
    assert intra[-1] != intra[0]  # dropping 90% of the steps changes the predictions


def test_composed_inter_modal_curve_equals_direct_evaluation(trained, tiny_store) -> None:
    """At rate r, the composed predictions equal predicting with the pattern zero-filled only in
    the selected samples."""
    spec, splits = trained["spec"], trained["splits"]
    test = splits["test"]
    model = restore_model(load_checkpoint(trained["paths"]["mmmie", 2]), spec, trained["hash"])
    masks = MissingMasks(test.lengths, {m: x.shape[1] for m, x in test.features.items()}, 0)
    pattern, rate = ("text", "vision"), 0.5
    rows = torch.from_numpy(masks.dropped_rows(pattern, rate))
    assert 0 < int(rows.sum()) < len(rows)

    def drop_selected(batch):
        hit = rows[batch.index].reshape(-1, 1, 1)
        features = {m: torch.where(hit, 0.0, x) if m in pattern else x
                    for m, x in batch.features.items()}  # fmt: skip
        return replace(batch, features=features)

    direct, _ = evaluate(model, test, 16, "cpu", drop_selected)
    records = evaluate_checkpoint(_task(trained, tiny_store, "mmmie", 2))
    composed = next(r for r in records if r.condition == condition_name(pattern) and r.rate == rate)
    for name, value in direct.items():
        assert composed.metrics[name] == pytest.approx(value, abs=1e-6), name


def test_same_masks_for_every_run_and_worker_count_a_new_missing_seed_changes_them(
    trained, tiny_store
) -> None:
    tasks = [_task(trained, tiny_store, m, s) for m in ("lf_dnn", "mmmie") for s in (1, 2)]
    one = list(map_in_order(evaluate_checkpoint, tasks, 1))
    two = list(map_in_order(evaluate_checkpoint, tasks, 2))
    assert one == two
    other = evaluate_checkpoint(_task(trained, tiny_store, missing_seed=7))
    assert [r.metrics for r in other if r.rate == 0.0] == [
        r.metrics for r in one[0] if r.rate == 0.0
    ]
    assert [r.metrics for r in other if r.rate > 0.0] != [r.metrics for r in one[0] if r.rate > 0.0]


def test_records_round_trip_and_bad_files_name_the_file(tmp_path: Path) -> None:
    records = [RobustnessRecord("d", "m", 1, INTRA, 0.1, {"mae": 0.5})]
    save_records(tmp_path / "r.json", records)
    assert load_records(tmp_path / "r.json") == records
    (tmp_path / "bad.json").write_text("[{}]")
    with pytest.raises(DataError, match=r"bad\.json: not a valid robustness record file"):
        load_records(tmp_path / "bad.json")


# ------------------------------------------------------------------------- areas and tables


def test_area_under_curve_by_hand() -> None:
    assert area_under_curve(np.array([0.0, 0.5, 1.0]), np.array([1.0, 1.0, 0.0])) == 0.75
    assert area_under_curve(np.array(RATES), np.full(10, 0.8)) == pytest.approx(0.72)
    assert math.isnan(area_under_curve(np.array([0.0, 1.0]), np.array([1.0, math.nan])))
    with pytest.raises(ValueError, match="strictly increasing"):
        area_under_curve(np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="length >= 2"):
        area_under_curve(np.array([0.0]), np.array([1.0]))


def _records(method: str, seeds, slope: float, offset: float = 0.0) -> list[RobustnessRecord]:
    """MAE rising linearly with the rate (per-seed offsets), other metrics constant."""
    out = []
    for i, seed in enumerate(seeds):
        for condition in CONDITIONS:
            for rate in RATES:
                mae = 0.5 + offset + slope * rate + 0.01 * i
                metrics = {"acc2_has0": 0.7, "f1_has0": 0.7, "acc2_non0": 0.7, "f1_non0": 0.7,
                           "acc5": 0.4, "acc7": 0.3, "mae": mae, "corr": 0.5}  # fmt: skip
                out.append(RobustnessRecord("d", method, seed, condition, rate, metrics))
    return out


def test_area_tables_find_the_robust_method_and_no_difference_between_twins() -> None:
    seeds = (1, 2, 3, 4, 5)
    robust = _records("robust", seeds, slope=0.1)
    fragile = _records("fragile", seeds, slope=1.0)
    twin = [replace(r, method="twin") for r in robust]
    area = areas(robust + fragile, "mosi")
    assert area[INTRA]["robust"][1]["mae"] == pytest.approx(0.9 * 0.5 + 0.1 * 0.405)
    frames = area_frames(robust + fragile + twin, "d", "mosi")
    assert list(frames) == list(CONDITIONS)
    mae = frames[INTRA].set_index("method").query("metric == 'mae'")
    assert mae.loc["robust", "is_best"] and mae.loc["fragile", "significant"]
    assert not mae.loc["twin", "significant"] and mae.loc["twin", "p_ttest"] != 0.0


def test_missing_rate_in_one_seed_is_reported() -> None:
    records = _records("a", (1, 2), slope=0.1)
    records = [r for r in records if not (r.seed == 2 and r.condition == INTRA and r.rate == 0.5)]
    with pytest.raises(DataError, match="a/seed 2/intra have rates"):
        areas(records, "mosi")


def test_curve_frame_means_and_stds_over_seeds() -> None:
    frame = curve_frame(_records("a", (1, 2), slope=1.0), "mosi")
    row = frame.query("condition == 'intra' and metric == 'mae' and rate == 0.5").iloc[0]
    assert row["mean"] == pytest.approx(1.005) and row["std"] == pytest.approx(0.01 / math.sqrt(2))
    assert row["n_seeds"] == 2
    assert list(pd_unique(frame["condition"])) == list(CONDITIONS)


def pd_unique(series):
    return dict.fromkeys(series)


def test_dropped_rows_are_nested_seeded_and_about_r() -> None:
    lengths = {m: torch.full((2000,), 5) for m in ("text", "audio", "vision")}
    masks = MissingMasks(lengths, {"text": 5, "audio": 5, "vision": 5}, seed=3)
    again = MissingMasks(lengths, {"text": 5, "audio": 5, "vision": 5}, seed=3)
    previous = np.zeros(2000, dtype=bool)
    for rate in RATES:
        rows = masks.dropped_rows(("audio",), rate)
        np.testing.assert_array_equal(rows, again.dropped_rows(("audio",), rate))
        assert np.all(rows[previous]) and abs(rows.mean() - rate) < 0.04
        previous = rows
    assert not masks.dropped_rows(("text",), 0.0).any()
    other = [masks.dropped_rows(p, 0.5) for p in INTER_PATTERNS]
    assert len({tuple(np.flatnonzero(r)[:20]) for r in other}) == len(INTER_PATTERNS)
    with pytest.raises(ValueError, match="inter-modal pattern"):
        masks.dropped_rows(("audio", "text"), 0.5)


def test_lost_area_separates_robustness_from_complete_data_performance() -> None:
    seeds = (1, 2, 3, 4, 5)
    # "good_but_fragile" is better at every rate up to 0.3 but loses more; "flat" loses nothing
    fragile = _records("good_but_fragile", seeds, slope=1.0, offset=-0.3)
    flat = _records("flat", seeds, slope=0.0)
    lost = areas(fragile + flat, "mosi", lost=True)
    assert lost[INTRA]["flat"][1]["mae"] == pytest.approx(0.0, abs=1e-12)
    assert lost[INTRA]["good_but_fragile"][1]["mae"] == pytest.approx(0.405)
    assert lost[INTRA]["flat"][1]["acc7"] == pytest.approx(0.0, abs=1e-12)
    frames = lost_area_frames(fragile + flat, "d", "mosi")
    mae = frames[INTRA].set_index("method").query("metric == 'mae'")
    assert mae.loc["flat", "is_best"] and mae.loc["good_but_fragile", "significant"]
    report = render_report("d", area_frames(fragile + flat, "d", "mosi"), frames, 0)
    assert "How much each method loses" in report and "| good_but_fragile |" in report


def test_curve_figures_are_written_as_png_and_pdf_with_identical_bytes(tmp_path: Path) -> None:
    from harness.reports.figures import rate_curves_figure, save_figure

    curves = curve_frame(_records("a", (1, 2), slope=1.0) + _records("b", (1, 2), 0.2), "mosi")
    intra = curves[curves["condition"] == INTRA]
    written = []
    for name in ("one", "two"):
        figure = rate_curves_figure(intra, "title", ("acc2_non0", "mae"))
        assert len([ax for ax in figure.axes if ax.get_visible()]) == 2
        written.append(save_figure(figure, tmp_path / name))
    for first, second in zip(*written, strict=True):
        assert first.suffix in (".png", ".pdf") and first.read_bytes() == second.read_bytes()
