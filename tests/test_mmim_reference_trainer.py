"""MMIM's estimator and entropy memory as MMSA's trainer runs them: the likelihood-bound pass,
its optimiser and gradients, one epoch against MMSA's `do_train` written out by hand, and the
label-split entropy memory against MMSA's `train_others` bookkeeping. The registry contract and
learning tests are in tests/test_method_mult_mmim.py."""

from __future__ import annotations

import pytest
import torch

import methods.mmim  # noqa: F401  (import registers the method)
from harness.data.loading import iterate_batches, take_batch
from harness.data.types import Batch
from harness.errors import ConfigError
from harness.training.loop import LoopConfig, RunContext, build_model, fit
from methods import METHODS
from methods.mmim import PAIRS

MMIM_TERMS = {"task", "mmilb", "entropy", "cpc"}


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a loaded two-core machine two threads contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name: str, spec, seed: int = 0, **overrides):
    cls = METHODS.get(name)
    return build_model(cls, cls.resolve_hparams(spec.kind, overrides), spec, seed)


def _batch(splits, n: int = 16) -> Batch:
    return take_batch(splits["train"], torch.arange(n))


def _total(model, batch: Batch) -> torch.Tensor:
    return torch.stack(list(model.loss_terms(batch, model(batch)).values())).sum()


# -- MMIM ------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", ["cpc_weight", "mmilb_weight", "entropy_weight"])
def test_mmim_zero_weight_removes_its_term(weight, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec, **{weight: 0.0})
    batch = _batch(splits)
    terms = model.loss_terms(batch, model(batch))
    removed = {"cpc_weight": "cpc", "mmilb_weight": "mmilb", "entropy_weight": "entropy"}[weight]
    assert set(terms) == MMIM_TERMS - {removed}
    assert model.loss_weights()[removed] == 0.0
    if weight == "mmilb_weight":
        assert model.extra_step(batch) == {}


def test_mmim_extra_step_changes_only_the_estimator(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec, mmilb_schedule="per_batch")
    model.train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logged = model.extra_step(_batch(splits))
    assert set(logged) == {"mmilb_lld"} and torch.isfinite(torch.tensor(logged["mmilb_lld"]))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.mmilb.named_parameters(prefix="mmilb") if p.requires_grad}
    assert changed == trainable
    assert all(p.grad is None for p in model.parameters())
    assert all(not e.memory.banks["pos"] for e in model.mmilb.values())


def test_mmim_main_optimiser_excludes_the_estimator(tiny_data) -> None:
    spec, _ = tiny_data
    model = _model("mmim", spec)
    main = {id(p) for group in model.parameter_groups() for p in group["params"]}
    estimator = {id(p) for p in model.estimator_parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert estimator and not main & estimator and main | estimator == trainable


def test_mmim_main_step_gives_the_estimator_no_gradient_per_batch(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec, mmilb_schedule="per_batch")
    model.train()
    batch = _batch(splits)
    _total(model, batch).backward()
    assert all(p.grad is None for p in model.mmilb.parameters())
    assert model.encoders["vision"].project.weight.grad is not None
    assert all(len(e.memory.banks["pos"]) == 1 for e in model.mmilb.values())


def test_mmim_reference_schedule_is_a_pass_of_its_own(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec)  # mmilb_schedule: passes (MMSA's)
    assert model.extra_step(_batch(splits)) == {}
    (only,) = model.training_passes()
    assert only.name == "mmilb"
    assert {id(p) for g in only.parameter_groups for p in g["params"]} == {
        id(p) for p in model.estimator_parameters()
    }
    assert (
        only.parameter_groups[0]["lr"] == 1e-3 and only.parameter_groups[0]["weight_decay"] == 1e-4
    )
    assert _model("mmim", spec, mmilb_weight=0.0).training_passes() == []
    # the main loss keeps q in the graph (MMSA clips its gradients with the rest)
    model.train()
    _total(model, _batch(splits)).backward()
    assert all(p.grad is not None for p in model.estimator_parameters())


def _mmsa_mmim_epoch(model, splits, seed: int) -> None:
    """One epoch as MMSA's MMIM trainer runs it (`do_train`: `train_mmilb`, then
    `train_others`), written out by hand: each pass zeroes every gradient, backpropagates,
    clips the global norm over all parameters and steps its own optimiser."""
    hp = model.hparams
    mmilb = torch.optim.Adam(
        model.estimator_parameters(), lr=hp.mmilb_learning_rate, weight_decay=hp.mmilb_weight_decay
    )
    main = torch.optim.Adam(
        model.parameter_groups(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    params = [p for p in model.parameters() if p.requires_grad]
    shuffle = torch.Generator().manual_seed(seed)
    model.train()
    for optimizer, main_pass in ((mmilb, False), (main, True)):
        for batch in iterate_batches(splits["train"], hp.batch_size, True, shuffle, False):
            model.zero_grad()
            if main_pass:
                loss = _total(model, batch)
            else:
                loss = -model._likelihoods(model.encode(batch), frozen=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, hp.grad_clip)
            optimizer.step()


def test_mmim_epoch_follows_mmsa_trainer(tiny_data) -> None:
    spec, splits = tiny_data
    no_dropout = {"text_dropout": 0.0, "fusion_dropout": 0.0, "batch_size": 16}
    ours = _model("mmim", spec, seed=3, **no_dropout)
    loop = LoopConfig(max_epochs=1, patience=1, select_metric="mae", progress=False)
    outcome = fit(ours, splits["train"], splits["valid"], loop, RunContext("t", "mmim", 3), 3)
    assert {"mmilb_nll", "mmilb_total", "task", "total"} <= set(outcome.history[0].train)
    reference = _model("mmim", spec, seed=3, **no_dropout)
    _mmsa_mmim_epoch(reference, splits, seed=3)
    for (name, a), b in zip(ours.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name
    untrained = _model("mmim", spec, seed=3, **no_dropout)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(ours.mmilb.parameters(), untrained.mmilb.parameters(), strict=True)
    ]
    assert any(moved)  # the estimator pass trained q


def _mmsa_entropy_terms(model, outputs: list[dict], labels: list[torch.Tensor]) -> list[float]:
    """The entropy term of each batch of one epoch as MMSA's `train_others` and MMILB compute
    it, written out by hand: memories built empty each epoch, passed from i_batch >= mem_size,
    H = 0.25 (logdet S_pos + logdet S_neg) of memory + batch (biased covariance, no jitter),
    subtracted (times beta) only while i_batch > mem_size; the oldest batch replaced."""
    size, beta = model.hparams.memory_size, model.hparams.entropy_weight
    memories = {pair: {"pos": [], "neg": []} for pair in model.mmilb}
    terms = []
    for i_batch, (out, y_true) in enumerate(zip(outputs, labels, strict=True)):
        total = 0.0
        for pair, estimator in model.mmilb.items():
            y = torch.tanh(estimator.entropy_projection(out[PAIRS[pair][1]]))
            current = {"pos": y[y_true > 0], "neg": y[y_true < 0]}
            if i_batch > size:
                h = 0.0
                for sign in ("pos", "neg"):
                    rows = torch.cat(memories[pair][sign] + [current[sign]], dim=0)
                    centred = rows - rows.mean(dim=0)
                    sigma = torch.mean(torch.bmm(centred.unsqueeze(-1), centred.unsqueeze(1)), 0)
                    h += 0.25 * float(torch.logdet(sigma))
                total -= beta * h
            for sign in ("pos", "neg"):
                if len(memories[pair][sign]) < size:
                    memories[pair][sign].append(current[sign])
                else:
                    memories[pair][sign][i_batch % size] = current[sign]
        terms.append(total)
    return terms


@pytest.mark.parametrize("memory_size", [1, 2])
def test_mmim_entropy_memory_follows_mmsa_trainer(memory_size, tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec, seed=1, memory_size=memory_size, batch_size=16)
    assert model.hparams.entropy_memory == "epoch" and model.hparams.entropy_jitter == 0.0
    model.train()
    shuffle = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for epoch in (1, 2):
            model.start_epoch(epoch)
            batches = list(iterate_batches(splits["train"], 16, True, shuffle, False))
            outputs = [model(batch) for batch in batches]
            ours = [
                float(model.loss_terms(batch, out)["entropy"])
                for batch, out in zip(batches, outputs, strict=True)
            ]
            labels = [batch.labels for batch in batches]
            expected = _mmsa_entropy_terms(model, outputs, labels)
            assert ours == pytest.approx(expected, rel=1e-4, abs=1e-6)
            assert ours[: memory_size + 1] == [0.0] * (memory_size + 1)
            assert all(term != 0.0 for term in ours[memory_size + 1 :])


def test_mmim_rolling_entropy_memory_is_the_earlier_form(tiny_data) -> None:
    spec, splits = tiny_data
    model = _model("mmim", spec, seed=1, entropy_memory="rolling", entropy_jitter=1e-3)
    model.train()
    batch = _batch(splits)
    with torch.no_grad():
        model.start_epoch(1)
        first = float(model.loss_terms(batch, model(batch))["entropy"])
        model.start_epoch(2)  # kept across epochs
        assert all(len(e.memory.banks["pos"]) == 1 for e in model.mmilb.values())
    assert first != 0.0  # counted from the first batch
    with pytest.raises(ConfigError, match="entropy_memory"):
        _model("mmim", spec, entropy_memory="forever")
    with pytest.raises(ConfigError, match="entropy_jitter"):
        _model("mmim", spec, entropy_jitter=-1.0)


def test_mmim_add_va_adds_a_third_bound(tiny_data) -> None:
    spec, _ = tiny_data
    assert set(_model("mmim", spec, add_va=True).mmilb) == {"tv", "ta", "va"}


def test_mmim_rejects_negative_weights(tiny_data) -> None:
    spec, _ = tiny_data
    with pytest.raises(ConfigError, match="cpc_weight"):
        _model("mmim", spec, cpc_weight=-0.1)
