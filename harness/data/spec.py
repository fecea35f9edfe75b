"""What a dataset is, without torch: modalities, splits, dataset kinds and their label ranges,
and `DataSpec` (what a method needs to know to build itself). harness/data/types.py holds the
tensor containers (`Batch`, `SplitData`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.data.tokens import TokenInfo

MODALITIES: tuple[str, ...] = ("text", "audio", "vision")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
# a kind fixes the task, the label range, the metrics and the methods' reference defaults:
# "mosi" and "mosei" share the [-3, 3] scale and its metrics and differ in the defaults MMSA sets
# for them; "sims" is CH-SIMS's [-1, 1]; "binary" is a classification task (humour, sarcasm):
# labels 0/1, a model's prediction is the probability of class 1
DATASET_KINDS: tuple[str, ...] = ("mosi", "mosei", "sims", "binary")
# the regression kinds (a continuous sentiment score): MMSA's own kinds
REGRESSION_KINDS: tuple[str, ...] = ("mosi", "mosei", "sims")
LABEL_RANGES: dict[str, tuple[float, float]] = {
    "mosi": (-3.0, 3.0),
    "mosei": (-3.0, 3.0),
    "sims": (-1.0, 1.0),
    "binary": (0.0, 1.0),
}


def is_classification(kind: str) -> bool:
    """True for a classification kind ("binary"): labels are classes, predictions probabilities."""
    return kind == "binary"


@dataclass(frozen=True)
class DataSpec:
    """What a method needs to know to build itself for a dataset."""

    kind: str  # one of DATASET_KINDS
    feature_dims: dict[str, int]  # modality -> D_m
    max_lengths: dict[str, int]  # modality -> T_m (padded length)
    label_range: tuple[float, float]  # (-3, 3) mosi and mosei, (-1, 1) sims, (0, 1) binary
    modalities: tuple[str, ...] = MODALITIES
    tokens: TokenInfo | None = None  # the text model of the dataset's token ids, if it has them
