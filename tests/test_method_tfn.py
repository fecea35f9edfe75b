"""TFN's reference output range (MMSA's TFN maps into (-3, 3) on every dataset) and its
switch. The registry-wide contract runs in tests/test_methods_contract.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.data.loading import take_batch
from harness.errors import ConfigError
from harness.training.loop import build_model
from methods import METHODS


def _batch(splits, n: int):
    return take_batch(splits["train"], torch.arange(n))


@pytest.mark.parametrize(
    ("output_range", "bounds"), [("mmsa", (-3.0, 3.0)), ("labels", (-1.0, 1.0))]
)
def test_tfn_output_range_on_a_sims_kind_dataset(output_range, bounds, tiny_data) -> None:
    """MMSA's TFN maps into (-3, 3) on every dataset, CH-SIMS's [-1, 1] labels included."""
    spec, splits = tiny_data
    sims = replace(spec, kind="sims", label_range=(-1.0, 1.0))
    cls = METHODS.get("tfn")
    hparams = cls.resolve_hparams("sims", {"output_range": output_range})
    model = build_model(cls, hparams, sims, seed=0)
    model.eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(100.0)  # saturate the sigmoid at both ends
        scores = model(_batch(splits, 32))["prediction"]
    assert float(scores.min()) == pytest.approx(bounds[0], abs=1e-3)
    assert float(scores.max()) == pytest.approx(bounds[1], abs=1e-3)


def test_tfn_output_range_is_checked() -> None:
    with pytest.raises(ConfigError, match="output_range: expected one of mmsa, labels"):
        METHODS.get("tfn").resolve_hparams("mosi", {"output_range": "dataset"})
