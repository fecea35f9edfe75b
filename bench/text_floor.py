"""The floor every method must beat on a dataset with token-level text: ridge regressions on the
frozen text model's mean-pooled token states (text alone, and with the audio and vision vectors
appended), the penalty chosen on the validation split only, scored once on the test split with
the harness's own metrics. Deterministic (closed form): no seeds.

Reads the feature store as stored (`features/<dataset>`: text (N, L, H) frozen token states,
audio and vision (N, T_m, D_m), mean-pooled over their real steps), z-scores the pooled vectors
with training statistics, and fits sklearn's Ridge for each alpha in a log grid.

Usage: python bench/text_floor.py [--dataset mosi_tokens]
Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np


def pooled(split, modalities: tuple[str, ...]) -> np.ndarray:
    """(N, sum D_m) the masked mean of each modality's features over its real steps."""
    parts = []
    for m in modalities:
        x = split.features[m].double().numpy()
        lengths = split.lengths[m].numpy()
        mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
        parts.append((x * mask[..., None]).sum(1) / lengths[:, None])
    return np.concatenate(parts, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mosi_tokens")
    args = parser.parse_args()
    from sklearn.linear_model import Ridge

    from harness.data.loading import load_dataset
    from harness.metrics import compute_metrics, is_better

    spec, splits = load_dataset(f"features/{args.dataset}", standardize=False)
    low, high = spec.label_range
    print("| inputs | alpha (chosen on valid) | valid MAE | test MAE | Corr | Acc-2 | F1 | Acc-7 |")
    print("|---|---|---|---|---|---|---|---|")
    for modalities in (("text",), ("text", "audio", "vision")):
        x = {name: pooled(split, modalities) for name, split in splits.items()}
        mean, std = x["train"].mean(0), x["train"].std(0) + 1e-8
        x = {name: (values - mean) / std for name, values in x.items()}
        y = {name: split.labels.double().numpy() for name, split in splits.items()}
        best = None
        for alpha in np.logspace(-2, 4, 25):
            model = Ridge(alpha=alpha).fit(x["train"], y["train"])
            valid = compute_metrics(
                spec.kind, np.clip(model.predict(x["valid"]), low, high), y["valid"]
            )
            if best is None or is_better("mae", valid["mae"], best[1]["mae"]):
                best = (alpha, valid, model)
        alpha, valid, model = best
        test = compute_metrics(spec.kind, np.clip(model.predict(x["test"]), low, high), y["test"])
        print(
            f"| {' + '.join(modalities)} | {alpha:.3g} | {valid['mae']:.4f} | {test['mae']:.4f} | "
            f"{test['corr']:.4f} | {test['acc2_non0']:.4f} | {test['f1_non0']:.4f} | "
            f"{test['acc7']:.4f} |"
        )


if __name__ == "__main__":
    main()
