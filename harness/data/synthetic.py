"""The embedded synthetic benchmark `synth`: trimodal sentiment data with a known structure.

Everything is drawn with numpy's `default_rng`; `seed` fixes every array bit for bit. Parameters
come from `default_rng([seed, 0])`, samples from `default_rng([seed, 1])`. Notation: m is a
modality (text, audio, vision), T_m = max_lengths[m], D_m = feature_dims[m], K_m = noise_dims[m],
I_m = D_m - K_m informative columns, S = shared_dim, U = unique_dim, Z = nuisance_dim.

Fixed parameters
    w_s in R^S, w_m in R^U (one per m), v_t, v_a in R^U     unit vectors, uniformly random
    A_m (I_m, S), B_m (I_m, U)                              entries ~ N(0, 1 / (S + U))
    C_m (I_m, Z)                                            entries ~ N(0, 1 / Z)
    c = (c_text, c_audio, c_vision) = (1.0, 0.6, 0.4)       modality weights (MODALITY_WEIGHTS)

Per sample (N = n_train + n_valid + n_test samples drawn iid into one pool)
    s ~ N(0, I_S)           shared latent, present in every modality
    u_m ~ N(0, I_U)         unique latent of modality m
    z_m ~ N(0, I_Z)         nuisance latent of modality m (task-irrelevant)
    y_raw   = w_s.s + sum_m c_m (w_m.u_m) + lambda (v_t.u_text)(v_a.u_audio),
              lambda = interaction_weight (a text x audio multiplicative interaction)
    scale   = sqrt(1 + c_text^2 + c_audio^2 + c_vision^2 + lambda^2)
              (= std of y_raw exactly: the terms are uncorrelated and each has unit variance)
    y_clean = 3 tanh(y_raw / scale)                                   in (-3, 3)
    r_k     = clip(round(y_clean + annotator_std * e_k), -3, 3),  e_k ~ N(0, 1), k = 1..n_annotators
    label   = mean_k r_k    (multiples of 1 / n_annotators in [-3, 3]; exact zeros occur)

Sequence of modality m (t = 0 .. T_m - 1)
    L_m     ~ UniformInteger[ceil(min_length_fraction * T_m), T_m]      true length
    delta_m ~ Uniform[0, max_shift_fraction * L_m]                        asynchrony
    g_m(t)  = exp(-(t - mu_m)^2 / (2 sigma_m^2)),  mu_m = L_m / 4 + delta_m,  sigma_m = L_m / 4
    x_m[t, :I_m] = g_m(t) tanh(A_m s + B_m u_m) + C_m z_m + noise_std[m] * eps_t,  eps_t ~ N(0, I)
    x_m[t, I_m:] ~ N(0, I)                                                pure-noise columns
    x_m[t] = 0 for t >= L_m                                               padding

The pool's first n_train samples form train, the next n_valid valid, the last n_test test; ids are
"synth_<pool index>" zero-padded to 5 digits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.spec import MODALITIES, SPLITS
from harness.data.split_arrays import SplitArrays
from harness.data.store import Manifest, write_store
from harness.errors import ConfigError
from harness.io_utils import sha256_json
from harness.schema import check_keys

MODALITY_WEIGHTS: dict[str, float] = {"text": 1.0, "audio": 0.6, "vision": 0.4}
LABEL_LIMIT = 3.0
DEFAULT_PREFIX = "datasets.synth.synthetic"


def _per_modality(text: Any, audio: Any, vision: Any) -> Any:
    return field(default_factory=lambda: {"text": text, "audio": audio, "vision": vision})


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the generator; JSON-serialisable via `to_dict`."""

    seed: int = 0
    n_train: int = 600
    n_valid: int = 200
    n_test: int = 400
    shared_dim: int = 4
    unique_dim: int = 2
    nuisance_dim: int = 4
    max_lengths: dict[str, int] = _per_modality(20, 60, 40)
    feature_dims: dict[str, int] = _per_modality(32, 16, 24)
    noise_dims: dict[str, int] = _per_modality(4, 4, 6)  # pure-noise columns, within feature_dims
    min_length_fraction: float = 0.5
    noise_std: dict[str, float] = _per_modality(0.5, 1.0, 1.5)
    max_shift_fraction: float = 0.3
    interaction_weight: float = 0.5
    n_annotators: int = 5
    annotator_std: float = 0.5

    @property
    def split_sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "valid": self.n_valid, "test": self.n_test}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], prefix: str = DEFAULT_PREFIX
    ) -> SyntheticConfig:
        """From a params.yaml section: missing keys take defaults, bad ones raise ConfigError."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"{prefix}: expected a mapping, got {mapping!r}")
        check_keys(mapping, [f.name for f in fields(cls)], prefix, "")
        config = cls(**{key: _plain(value) for key, value in mapping.items()})
        check_config(config, prefix)
        return config


def _plain(value: Any) -> Any:
    """Copy mappings into plain dicts so the frozen config owns its values."""
    return dict(value) if isinstance(value, Mapping) else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    is_number = _is_int(value) or isinstance(value, float | np.floating)
    return is_number and math.isfinite(float(value))


def _require_int(value: Any, key: str, low: int) -> None:
    if not _is_int(value) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ConfigError(f"{key}: expected {what}, got {value!r}")


def _require_real(value: Any, key: str, low: float, high: float, low_open: bool = False) -> None:
    in_range = _is_real(value) and (value > low if low_open else value >= low) and value <= high
    if not in_range:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{key}: expected a number in {bracket}{low}, {high}], got {value!r}")


def _require_modality_map(value: Any, key: str) -> None:
    if not isinstance(value, Mapping) or set(value) != set(MODALITIES):
        raise ConfigError(
            f"{key}: expected a mapping with keys {', '.join(MODALITIES)}, got {value!r}"
        )


def check_config(config: SyntheticConfig, prefix: str = DEFAULT_PREFIX) -> None:
    """Raise ConfigError (one line, naming the key) unless every field is valid."""
    _require_int(config.seed, f"{prefix}.seed", 0)
    for key in ("n_train", "n_valid", "n_test", "shared_dim", "unique_dim", "nuisance_dim"):
        _require_int(getattr(config, key), f"{prefix}.{key}", 1)
    _require_int(config.n_annotators, f"{prefix}.n_annotators", 1)
    for key in ("max_lengths", "feature_dims", "noise_dims", "noise_std"):
        _require_modality_map(getattr(config, key), f"{prefix}.{key}")
    for m in MODALITIES:
        _require_int(config.max_lengths[m], f"{prefix}.max_lengths.{m}", 1)
        _require_int(config.feature_dims[m], f"{prefix}.feature_dims.{m}", 2)
        noise_key, noise = f"{prefix}.noise_dims.{m}", config.noise_dims[m]
        if not _is_int(noise) or not 0 <= noise < config.feature_dims[m]:
            bound = f"[0, feature_dims.{m} - 1]"
            raise ConfigError(f"{noise_key}: expected an integer in {bound}, got {noise!r}")
        _require_real(config.noise_std[m], f"{prefix}.noise_std.{m}", 0.0, math.inf)
    _require_real(config.min_length_fraction, f"{prefix}.min_length_fraction", 0.0, 1.0, True)
    _require_real(config.max_shift_fraction, f"{prefix}.max_shift_fraction", 0.0, 1.0)
    _require_real(config.interaction_weight, f"{prefix}.interaction_weight", -math.inf, math.inf)
    _require_real(config.annotator_std, f"{prefix}.annotator_std", 0.0, math.inf)


@dataclass(frozen=True)
class SyntheticParameters:
    """The fixed weights: w_shared (S,), w_unique[m] (U,), v_text/v_audio (U,), mixing_shared[m]
    (I_m, S), mixing_unique[m] (I_m, U), mixing_nuisance[m] (I_m, Z); scale = std of y_raw."""

    w_shared: np.ndarray
    w_unique: dict[str, np.ndarray]
    v_text: np.ndarray
    v_audio: np.ndarray
    mixing_shared: dict[str, np.ndarray]
    mixing_unique: dict[str, np.ndarray]
    mixing_nuisance: dict[str, np.ndarray]
    modality_weights: dict[str, float]
    interaction_weight: float
    scale: float

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> array map (e.g. "mixing_shared/text"), for a store's extras file."""
        arrays = {"w_shared": self.w_shared, "v_text": self.v_text, "v_audio": self.v_audio}
        for m in MODALITIES:
            arrays[f"w_unique/{m}"] = self.w_unique[m]
            arrays[f"mixing_shared/{m}"] = self.mixing_shared[m]
            arrays[f"mixing_unique/{m}"] = self.mixing_unique[m]
            arrays[f"mixing_nuisance/{m}"] = self.mixing_nuisance[m]
        arrays["modality_weights"] = np.array([self.modality_weights[m] for m in MODALITIES])
        arrays["interaction_weight"] = np.array(self.interaction_weight)
        arrays["scale"] = np.array(self.scale)
        return arrays


@dataclass(frozen=True)
class SyntheticLatents:
    """Ground truth of one split: shared (N, S), unique[m] (N, U), nuisance[m] (N, Z),
    y_clean (N,) float64 in (-3, 3)."""

    shared: np.ndarray
    unique: dict[str, np.ndarray]
    nuisance: dict[str, np.ndarray]
    y_clean: np.ndarray


@dataclass(frozen=True)
class SyntheticData:
    """Observed arrays and ground-truth latents per split, plus the fixed parameters."""

    config: SyntheticConfig
    arrays: dict[str, SplitArrays]
    latents: dict[str, SyntheticLatents]
    parameters: SyntheticParameters

    def latent_arrays(self) -> dict[str, np.ndarray]:
        """Flat map "train/shared", "train/unique/text", "train/nuisance/text", "train/y_clean"."""
        flat: dict[str, np.ndarray] = {}
        for split, latent in self.latents.items():
            flat[f"{split}/shared"] = latent.shared
            flat[f"{split}/y_clean"] = latent.y_clean
            for m in MODALITIES:
                flat[f"{split}/unique/{m}"] = latent.unique[m]
                flat[f"{split}/nuisance/{m}"] = latent.nuisance[m]
        return flat


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    vector = rng.standard_normal(dim)
    return vector / np.linalg.norm(vector)


def draw_parameters(config: SyntheticConfig) -> SyntheticParameters:
    """The fixed weights and mixing matrices, from their own rng (seed, 0)."""
    rng = np.random.default_rng([config.seed, 0])
    shared_dim, unique_dim, nuisance_dim = config.shared_dim, config.unique_dim, config.nuisance_dim
    w_shared = _unit(rng, shared_dim)
    w_unique = {m: _unit(rng, unique_dim) for m in MODALITIES}
    v_text, v_audio = _unit(rng, unique_dim), _unit(rng, unique_dim)
    mix_s, mix_u, mix_z = {}, {}, {}
    for m in MODALITIES:
        informative = config.feature_dims[m] - config.noise_dims[m]
        latent_scale = math.sqrt(shared_dim + unique_dim)
        mix_s[m] = rng.standard_normal((informative, shared_dim)) / latent_scale
        mix_u[m] = rng.standard_normal((informative, unique_dim)) / latent_scale
        mix_z[m] = rng.standard_normal((informative, nuisance_dim)) / math.sqrt(nuisance_dim)
    lam = float(config.interaction_weight)
    scale = math.sqrt(1.0 + sum(c * c for c in MODALITY_WEIGHTS.values()) + lam * lam)
    return SyntheticParameters(
        w_shared, w_unique, v_text, v_audio, mix_s, mix_u, mix_z, dict(MODALITY_WEIGHTS), lam, scale
    )


def clean_score(
    shared: np.ndarray, unique: dict[str, np.ndarray], params: SyntheticParameters
) -> np.ndarray:
    """y_clean (N,) in (-3, 3) from shared (N, S) and unique[m] (N, U)."""
    y_raw = shared @ params.w_shared
    for m in MODALITIES:
        y_raw = y_raw + params.modality_weights[m] * (unique[m] @ params.w_unique[m])
    interaction = (unique["text"] @ params.v_text) * (unique["audio"] @ params.v_audio)
    y_raw = y_raw + params.interaction_weight * interaction
    return LABEL_LIMIT * np.tanh(y_raw / params.scale)


def annotate(y_clean: np.ndarray, config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Average of n_annotators rounded, clipped noisy ratings: (N,) float32 in [-3, 3]."""
    noise = config.annotator_std * rng.standard_normal((y_clean.shape[0], config.n_annotators))
    ratings = np.clip(np.round(y_clean[:, None] + noise), -LABEL_LIMIT, LABEL_LIMIT)
    return (ratings.sum(axis=1) / config.n_annotators).astype(np.float32)


def _sequences(
    modality: str,
    latents: tuple[np.ndarray, np.ndarray, np.ndarray],
    params: SyntheticParameters,
    config: SyntheticConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, T_m, D_m) float32 and lengths (N,) int64 for one modality, from latents
    (shared (N, S), unique (N, U), nuisance (N, Z))."""
    shared, unique, nuisance = latents
    n, max_len = shared.shape[0], config.max_lengths[modality]
    n_noise = config.noise_dims[modality]
    min_len = max(1, math.ceil(config.min_length_fraction * max_len - 1e-9))
    lengths = rng.integers(min_len, max_len, size=n, endpoint=True)
    shift = rng.uniform(0.0, 1.0, size=n) * config.max_shift_fraction * lengths
    centre, width = lengths / 4.0 + shift, lengths / 4.0
    steps = np.arange(max_len)
    envelope = np.exp(-0.5 * ((steps[None, :] - centre[:, None]) / width[:, None]) ** 2)
    content = np.tanh(
        shared @ params.mixing_shared[modality].T + unique @ params.mixing_unique[modality].T
    )
    offset = nuisance @ params.mixing_nuisance[modality].T
    informative = envelope[:, :, None] * content[:, None, :] + offset[:, None, :]
    informative += config.noise_std[modality] * rng.standard_normal(informative.shape)
    noise_columns = rng.standard_normal((n, max_len, n_noise))
    padding_mask = steps[None, :] < lengths[:, None]
    features = np.where(
        padding_mask[:, :, None], np.concatenate([informative, noise_columns], 2), 0.0
    )
    return features.astype(np.float32), lengths.astype(np.int64)


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Draw the whole benchmark: arrays, latents and parameters (see the module docstring)."""
    config = config or SyntheticConfig()
    check_config(config)
    params = draw_parameters(config)
    rng = np.random.default_rng([config.seed, 1])
    n = sum(config.split_sizes.values())
    shared = rng.standard_normal((n, config.shared_dim))
    unique = {m: rng.standard_normal((n, config.unique_dim)) for m in MODALITIES}
    nuisance = {m: rng.standard_normal((n, config.nuisance_dim)) for m in MODALITIES}
    y_clean = clean_score(shared, unique, params)
    labels = annotate(y_clean, config, rng)
    features, lengths = {}, {}
    for m in MODALITIES:
        latents = (shared, unique[m], nuisance[m])
        features[m], lengths[m] = _sequences(m, latents, params, config, rng)
    ids = np.array([f"synth_{i:05d}" for i in range(n)])
    pool = SplitArrays(features, lengths, labels, ids)
    arrays, latent_splits, start = {}, {}, 0
    for split in SPLITS:
        rows = slice(start, start + config.split_sizes[split])
        start = rows.stop
        arrays[split] = _take_arrays(pool, rows)
        latent_splits[split] = SyntheticLatents(
            shared=shared[rows],
            unique={m: unique[m][rows] for m in MODALITIES},
            nuisance={m: nuisance[m][rows] for m in MODALITIES},
            y_clean=y_clean[rows],
        )
    return SyntheticData(config, arrays, latent_splits, params)


def _take_arrays(pool: SplitArrays, rows: slice) -> SplitArrays:
    """Rows of the pooled arrays as one split (copies, so splits never share memory)."""
    return SplitArrays(
        features={m: x[rows].copy() for m, x in pool.features.items()},
        lengths={m: n[rows].copy() for m, n in pool.lengths.items()},
        labels=pool.labels[rows].copy(),
        ids=pool.ids[rows].copy(),
    )


def write_synthetic_store(
    directory: str | Path,
    config: SyntheticConfig | None = None,
    dataset: str = "synth",
    standardize: bool = True,
) -> Manifest:
    """Generate the benchmark and write it as a feature store (latents and parameters as extras;
    `standardize` is the dataset's loader setting, recorded in the manifest)."""
    config = config or SyntheticConfig()
    data = generate(config)
    config_dict = config.to_dict()
    return write_store(
        Path(directory),
        dataset=dataset,
        kind="mosi",
        splits=data.arrays,
        source={"type": "synthetic", "config": config_dict},
        inputs=[{"name": "synthetic_config", "sha256": sha256_json(config_dict)}],
        extras={"latents": data.latent_arrays(), "parameters": data.parameters.to_arrays()},
        standardize=standardize,
    )
