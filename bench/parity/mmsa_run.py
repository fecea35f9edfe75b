"""One seed of one model trained by MMSA's own code (2.2.1, or GitHub master for the later four): run by the MMSA virtual environment's
Python (it imports nothing from msabench), called by `python -m bench.parity`.

What runs is MMSA's: `MMSA.config.get_config_regression(model, "mosi")` (its bundled
config_regression.json), `MMSA.data_loader.MMDataLoader` over the parity pickle (passed as
`custom_feature`), `MMSA.models.AMIO`, `MMSA.trains.ATIO` and the trainer's `do_train` /
`do_test`, seeded with `MMSA.utils.setup_seed(seed)`, the steps of `MMSA.run._run`. What this
script adds, each only because MMSA cannot run otherwise here:

1. `pretrained` points at the local text model directory (MMSA's own setting; the default
   `bert-base-uncased` would be downloaded).
2. MMSA hard-codes BERT-base's width 768 in three places; with a text model of another width
   (MiniLM: 384) they are set to it: `feature_dims[0]` after the data loader (it writes 768 for
   `use_bert` models; MMIM reads it), Self-MM's `text_out`, and the input width of MISA's
   `project_t` Linear (rebuilt with torch's default initialisation, as MMSA builds it).
3. `num_workers` 0 (single-process data loading; batches and their order are the same).
4. An epoch cap (`--max-epochs`): MMSA trains until its early stopping (`early_stop` epochs
   without a better validation `KeyEval`); at the cap the script sets `early_stop` to 0 after the
   epoch's validation pass, so do_train returns through its own test, keeping its best weights.
5. torch 2.13's `ReduceLROnPlateau` no longer takes `verbose` (a logging flag), which MMSA's
   MulT and MMIM trainers pass: the class is wrapped to drop it before MMSA is imported.
6. The test predictions are read with a forward hook on the model while the trainer's own
   `do_test` runs over the test split in file order, so both sides are scored by one metric code.
   Models return their prediction in different shapes (a dict with "M", a tensor, or TFR-Net's
   (prediction, generator loss) pair); `_prediction` reads each.
7. CENET's BERT is built by `pytorch_transformers`, which loads only `pytorch_model.bin`: the text
   model's safetensors weights are written once in that format to a directory beside it
   (`_pytorch_model_dir`), with the same config.json.
8. MMSA's TFR-Net builds its text encoder without passing `pretrained` (models/missingTask/
   TFR_NET/model.py), so `BertTextEncoder`'s default `bert-base-uncased` would be downloaded:
   that default is set to the local text model directory.
9. MMSA's data loader draws TFR-Net's 20%-missing view for every split (data_loader.py
   `generate_m`), so its validation (early stopping, the plateau schedule) and test would read
   incomplete inputs, msabench's the complete ones; the view is drawn at rate 0 outside the
   training split (`_complete_eval_views`), so both sides select and are scored on complete data.

ALMT, CENET, TETFN are not in PyPI's MMSA 2.2.1: they run from MMSA's GitHub master (thuiar/MMSA
at a94e65d) in a second environment (`--mmsa-master-python` of bench.parity), where CENET also
needs `pytorch-transformers` and ALMT `einops`.

Writes one JSON: {"side": "mmsa", "model", "seed", "ids", "predictions", "labels",
"mmsa_metrics" (the trainer's own test dict), "epochs", "seconds"}.

Usage: /work/mmsa-venv/bin/python bench/parity/mmsa_run.py --pickle P --model tfn --seed 1111
       --out F.json [--pretrained DIR] [--text-dim 384] [--max-epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


class _CountedPasses:
    """MMSA's validation loader, counting full passes; after `cap` passes it sets the config's
    `early_stop` to 0 so that do_train stops after this epoch's save-best check."""

    def __init__(self, loader, config, cap: int) -> None:
        self.loader, self.config, self.cap, self.passes = loader, config, cap, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        yield from self.loader
        self.passes += 1
        if self.passes >= self.cap:
            self.config["early_stop"] = 0


def _prediction(outputs):
    """The fused prediction in a model's output: a dict's "M", a tensor, or a tuple's first item
    read the same way (TFR-Net returns (prediction, generator loss)). (6)"""
    if isinstance(outputs, tuple):
        return _prediction(outputs[0])
    if isinstance(outputs, dict):
        return outputs["M"]
    return outputs


def _pytorch_model_dir(pretrained: str, work: Path) -> str:
    """A copy of the text model directory with its weights as `pytorch_model.bin`, the only file
    `pytorch_transformers` (CENET's BERT) loads. (7)"""
    import shutil

    import torch
    from safetensors.torch import load_file

    target = work / "text-model-bin"
    if not (target / "pytorch_model.bin").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            if (Path(pretrained) / name).is_file():
                shutil.copy(Path(pretrained) / name, target / name)
        weights = load_file(str(Path(pretrained) / "model.safetensors"))
        torch.save(weights, target / "pytorch_model.bin")
    return str(target)


def _complete_eval_views() -> None:
    """MMSA's missing-view generator at rate 0 outside the training split. (9)"""
    from MMSA.data_loader import MMDataset

    generate = MMDataset.generate_m

    def generate_m(self, modality, input_mask, input_len, missing_rate, missing_seed, mode="text"):
        rate = missing_rate if self.mode == "train" else 0.0
        return generate(self, modality, input_mask, input_len, rate, missing_seed, mode)

    MMDataset.generate_m = generate_m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pickle", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--text-dim", type=int, default=384)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    import torch.optim.lr_scheduler as schedulers

    class _ReduceLROnPlateau(schedulers.ReduceLROnPlateau):  # (5)
        def __init__(self, *args, verbose=None, **kwargs) -> None:
            super().__init__(*args, **kwargs)

    schedulers.ReduceLROnPlateau = _ReduceLROnPlateau
    from MMSA.config import get_config_regression
    from MMSA.data_loader import MMDataLoader
    from MMSA.models import AMIO
    from MMSA.trains import ATIO
    from MMSA.utils import setup_seed
    from torch import nn
    from torch.utils.data import DataLoader

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    config = get_config_regression(args.model, "mosi")
    with tempfile.TemporaryDirectory() as tmp:
        # the keys MMSA_run sets before _run
        config["model_save_path"] = Path(tmp) / f"{args.model}-mosi.pth"
        config["device"] = torch.device("cpu")
        config["train_mode"] = "regression"
        config["custom_feature"] = args.pickle
        config["feature_T"] = config["feature_A"] = config["feature_V"] = None
        config["cur_seed"] = 1
        if args.pretrained:
            config["pretrained"] = args.pretrained  # (1)
            from MMSA.models.subNets.BertTextEncoder import BertTextEncoder

            defaults = BertTextEncoder.__init__.__defaults__
            BertTextEncoder.__init__.__defaults__ = (*defaults[:-1], args.pretrained)  # (8)
            if args.model == "cenet":
                config["pretrained"] = _pytorch_model_dir(args.pretrained, Path(tmp))  # (7)
        setup_seed(args.seed)
        if args.model == "tfr_net":
            _complete_eval_views()  # (9)
        dataloader = MMDataLoader(config, num_workers=0)  # (3)
        if config.get("use_bert"):
            config["feature_dims"][0] = args.text_dim  # (2)
            if "text_out" in config and args.model == "self_mm":
                config["text_out"] = args.text_dim  # (2)
        model = AMIO(config).to(config["device"])
        if args.model == "misa" and args.text_dim != 768:  # (2)
            inner = model.Model
            inner.project_t.project_t = nn.Linear(args.text_dim, config["hidden_size"])
        trainer = ATIO().getTrain(config)
        dataloader["valid"] = _CountedPasses(dataloader["valid"], config, args.max_epochs)  # (4)
        trainer.do_train(model, dataloader)
        epochs = dataloader["valid"].passes
        model.load_state_dict(torch.load(config["model_save_path"]))
        test_set = dataloader["test"].dataset
        in_order = DataLoader(test_set, batch_size=config["batch_size"], shuffle=False)
        predictions: list[float] = []

        def record(_module, _inputs, outputs) -> None:  # (6)
            predictions.extend(_prediction(outputs).detach().reshape(-1).tolist())

        hook = model.register_forward_hook(record)
        results = trainer.do_test(model, in_order, mode="TEST")
        hook.remove()
    labels = [float(v) for v in test_set.labels["M"].reshape(-1)]
    if len(predictions) != len(labels):
        raise SystemExit(
            f"{args.model}: {len(predictions)} test predictions for {len(labels)} rows"
        )
    payload = {
        "side": "mmsa",
        "model": args.model,
        "seed": args.seed,
        "ids": [str(i) for i in test_set.ids],
        "predictions": predictions,
        "labels": labels,
        "mmsa_metrics": {k: float(v) for k, v in results.items()},
        "epochs": epochs,
        "max_epochs": args.max_epochs,
        "seconds": time.perf_counter() - started,
    }
    tmp_out = f"{args.out}.tmp{os.getpid()}"
    with open(tmp_out, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(tmp_out, args.out)


if __name__ == "__main__":
    main()
