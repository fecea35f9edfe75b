"""`RunCost`: what one trained model (method x dataset x seed) cost to train and to run, measured
by the train stage (`harness/training/cost.py`) and kept in its `RunResult` (`cost`).

Unlike the metrics, these numbers are not deterministic: two runs of the same seed on the same
machine give the same metrics bit for bit but not the same seconds or memory. Nothing that checks
reproducibility compares them; the tables report their mean over seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.errors import DataError


@dataclass(frozen=True)
class RunCost:
    """The cost of one seed's run, in the units its field names carry.

    - `parameters_total`: every parameter of the trained model (`model.parameters()`, each
      tensor once), a count; `parameters_trained`: those with `requires_grad` (a frozen
      pretrained encoder counts in the first only). Buffers are not parameters.
    - `peak_host_memory_mb`: `ru_maxrss` (the high-water resident set size) of the process that
      trained the seed, read when the seed finished, in MiB (2^20 bytes). It is the process's
      peak since it started, not the seed's alone: in the train stage's own process (one
      worker) it includes loading the data and any earlier seed of the same process; in a worker
      process (`train.workers` > 1, forked on Linux) it starts from the pages the worker
      inherited from the parent at the fork (counted once resident in both, shared copy-on-write)
      and includes the earlier seeds that worker ran. A bound on the memory a seed needs, not
      its increment.
    - `peak_gpu_memory_mb`: `torch.cuda.max_memory_allocated` on the training device over the
      seed's run (the peak statistics are reset when the seed starts), in MiB; the tensors
      torch allocated, not the CUDA context or the caching allocator's reserve. None on CPU.
    - `train_seconds_total`: wall seconds of the fit (every epoch, its validation pass and the
      restore of the best weights; not building the model, loading data or the test pass);
      `train_seconds_per_epoch`: the mean of the fit's per-epoch seconds (`EpochLog.seconds`,
      training and validation pass).
    - `inference_ms_per_sample`: wall milliseconds of the test split's one evaluation pass
      (batches of `inference_batch_size`, moved to the device, the forward pass, the
      predictions back on the host, the metrics), divided by its `inference_samples`.
    - `device`: where it ran: "cpu: <CPU model> (<n> threads)" or "cuda: <GPU name>".
    """

    parameters_total: int
    parameters_trained: int
    peak_host_memory_mb: float
    peak_gpu_memory_mb: float | None
    train_seconds_total: float
    train_seconds_per_epoch: float
    inference_ms_per_sample: float
    inference_batch_size: int
    inference_samples: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: Any, where: str = "run record") -> RunCost:
        """The cost as written by `to_dict`; DataError naming the missing or unknown keys."""
        if not isinstance(payload, dict):
            raise DataError(f"{where}: cost: expected a JSON object, got {payload!r}")
        names = {f.name for f in fields(cls)}
        missing, unknown = sorted(names - set(payload)), sorted(set(payload) - names)
        if missing or unknown:
            raise DataError(
                f"{where}: cost: missing keys {missing}, unknown keys {unknown} "
                f"(expected {sorted(names)})"
            )
        return cls(**payload)

    def metrics(self) -> dict[str, float]:
        """The numeric values, for MLflow metrics (`peak_gpu_memory_mb` left out on CPU)."""
        values = {k: v for k, v in self.to_dict().items() if k != "device" and v is not None}
        return {k: float(v) for k, v in values.items()}
