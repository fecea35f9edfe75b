"""Every attention in `methods/` runs through torch's fused `scaled_dot_product_attention`
(issue 23): the methods that attend call it, none writes a softmax over an attention map
itself, the fused CPU kernel runs where torch has one, and the two forms that used to be written
out (ALMT's and CENET's) equal the explicit softmax(q k^T * scale) v to float tolerance."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from torch.nn import functional as F
from torch.profiler import profile

from harness.data.loading import take_batch
from harness.training.loop import build_model
from methods import METHODS
from methods.common.cross_modal_enhancement import NonverbalAttention
from methods.common.hyper_modality import attend

# the methods with attention layers (on feature-level text; the rest have none)
ATTENDING = {
    "almt", "audio_only", "cenet", "fine", "fsrf", "ir_svr", "late_transformer", "misa",
    "mmmie", "mult", "tetfn", "text_only", "tfr_net", "vision_only",
}  # fmt: skip


def _training_forward(name: str, spec, splits):
    cls = METHODS.get(name)
    model = build_model(cls, cls.resolve_hparams(spec.kind), spec, seed=0)
    model.train()
    batch = take_batch(splits["train"], torch.arange(8))
    return model, batch


@pytest.mark.parametrize("name", METHODS.names())
def test_attention_goes_through_sdpa_and_no_softmax_over_a_map(name, tiny_data) -> None:
    spec, splits = tiny_data
    model, batch = _training_forward(name, spec, splits)
    fused = F.scaled_dot_product_attention
    calls: list[tuple[int, ...]] = []
    maps: list[tuple[int, ...]] = []

    def counted(*args, **kwargs):
        calls.append(tuple(args[0].shape))
        return fused(*args, **kwargs)

    def watched(original):
        def softmax(x, *args, **kwargs):
            if x.dim() >= 3:  # an attention map: (B, T, S) or (B, h, T, S)
                maps.append(tuple(x.shape))
            return original(x, *args, **kwargs)

        return softmax

    with (
        mock.patch.object(F, "scaled_dot_product_attention", counted),
        mock.patch.object(torch, "softmax", watched(torch.softmax)),
        mock.patch.object(torch.Tensor, "softmax", watched(torch.Tensor.softmax)),
        mock.patch.object(F, "softmax", watched(F.softmax)),
    ):
        outputs = model(batch)
        model.loss_terms(batch, outputs)
    assert maps == [], f"{name}: softmax over {maps}"
    assert bool(calls) == (name in ATTENDING), f"{name}: {len(calls)} SDPA calls"


def test_mult_evaluates_with_the_fused_cpu_kernel(tiny_data) -> None:
    """In evaluation (no attention dropout) torch's fused flash kernel runs and no attention
    map is materialised by a softmax."""
    spec, splits = tiny_data
    model, batch = _training_forward("mult", spec, splits)
    model.eval()
    with torch.no_grad(), profile() as profiler:
        model(batch)
    names = {event.name for event in profiler.events()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in names
    assert not names & {"aten::_softmax", "aten::softmax", "aten::_safe_softmax"}


def _explicit(q, k, v, scale, allowed=None):
    scores = q @ k.transpose(-2, -1) * scale
    if allowed is not None:
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1) @ v


def test_almt_attention_equals_the_explicit_form() -> None:
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, s, 16, generator=generator) for s in (7, 9, 9))
    key_mask = torch.ones(3, 9, dtype=torch.bool)
    key_mask[0, 5:] = False
    key_mask[2, 1:] = False  # one real key
    for mask in (None, key_mask):
        allowed = None if mask is None else mask[:, None, None, :]
        expected = _explicit(q, k, v, 16**-0.5, allowed)
        torch.testing.assert_close(attend(q, k, v, mask), expected, atol=1e-6, rtol=1e-5)
    # padded keys get no weight: dropping them changes nothing
    short = attend(q[:1], k[:1, :, :5], v[:1, :, :5])
    torch.testing.assert_close(attend(q, k, v, key_mask)[:1], short, atol=1e-6, rtol=1e-5)


def test_cenet_attention_equals_the_explicit_form_with_its_score_scale() -> None:
    torch.manual_seed(0)
    module = NonverbalAttention(hidden=12, score_scale=8.0)
    text, source = torch.randn(3, 6, 12), torch.randn(3, 10, 12)
    source_mask = torch.ones(3, 10, dtype=torch.bool)
    source_mask[1, 4:] = False
    source_mask[2] = False  # no real step: attends to its first (safe_mask)
    q, k, v = module.query(text), module.key(source), module.value(source)
    allowed = source_mask.clone()
    allowed[2, 0] = True
    expected = _explicit(q, k, v, 8.0, allowed.unsqueeze(1))
    got = module(text, source, source_mask)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(module(text, source, None), _explicit(q, k, v, 8.0))
