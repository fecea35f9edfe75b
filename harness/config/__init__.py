"""params.yaml -> typed, checked configuration (torch-free): `load_params` / `parse_params`
(params.py), the sections (sections.py; a dataset's: harness/data/declaration.py), a method's
own checks of its section (methods.py), and profiles, the named sets of changes to params.yaml
(profiles.py)."""

from harness.config.params import DEFAULT_PARAMS, Params, load_params, parse_params, read_yaml
from harness.config.sections import (
    BenchmarkConfig,
    CompareConfig,
    MethodConfig,
    PaperConfig,
    ProbeConfig,
    PrunerConfig,
    RobustnessConfig,
    TrainConfig,
    TuneConfig,
)
from harness.data.declaration import DatasetConfig, RemoteFile

__all__ = [
    "DEFAULT_PARAMS", "BenchmarkConfig", "CompareConfig", "DatasetConfig", "MethodConfig",
    "PaperConfig", "Params", "ProbeConfig", "PrunerConfig", "RemoteFile", "RobustnessConfig",
    "TrainConfig", "TuneConfig", "load_params", "parse_params", "read_yaml",
]  # fmt: skip
