"""Profiles: named sets of changes to params.yaml, applied with DVC's own `--set-param`.

A profile (profiles/<name>.yaml) lists only what it changes, as the overrides `dvc exp run -S`
takes (Hydra's syntax: `key=value` sets, `~key` deletes, `+key=value` adds); everything else is
inherited from params.yaml. `msabench profile NAME` checks the profile (applied to a copy of
params.yaml with DVC's own `apply_overrides`, then read as strictly as params.yaml itself,
methods' own checks included) and prints the `dvc exp run` command that runs it; `--run` runs
that command. DVC then records the experiment with its params, so `dvc exp show` compares the
profiles and the workspace's params.yaml is never overwritten by hand.

Why not a second params file merged by msabench: DVC tracks each stage's params by key, and a
key a stage lists must exist in every file it names, so an overlay file holding only some keys
cannot be tracked; `--set-param` writes the values where DVC already tracks them.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.params import DEFAULT_PARAMS, Params, parse_params, read_yaml
from harness.errors import ConfigError
from harness.schema import parse_section

PROFILES_DIR = Path("profiles")


@dataclass(frozen=True, kw_only=True)
class Profile:
    """profiles/<name>.yaml."""

    description: str
    set_params: tuple[str, ...]
    name: str = field(default="", metadata={"derived": True})


def profile_names(directory: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_profile(name: str, directory: Path = PROFILES_DIR) -> Profile:
    """The profile `name`; ConfigError naming the file, or listing the profiles, otherwise."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(profile_names(directory)) or "none"
        raise ConfigError(f"{path}: no such profile; profiles in {directory}/: {known}")
    profile = parse_section(Profile, read_yaml(path), "", str(path))
    for i, override in enumerate(profile.set_params):
        if "=" not in override and not override.startswith("~"):
            raise ConfigError(
                f"{path}: set_params[{i}]: expected key=value, ~key or +key=value, got {override!r}"
            )
    return Profile(description=profile.description, set_params=profile.set_params, name=name)


def apply_profile(profile: Profile, params_path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """params.yaml with the profile's overrides applied by DVC (`dvc exp run -S` semantics), as
    the decoded YAML; the file itself is not touched. ConfigError when DVC refuses an override
    (for instance a key that params.yaml lacks without a leading +)."""
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "params.yaml"
        shutil.copyfile(params_path, copy)
        try:
            apply_overrides(copy, list(profile.set_params))
        except Exception as exc:  # DVC's InvalidArgumentError and Hydra's parse errors
            reason = " ".join(str(exc).split())
            raise ConfigError(f"profiles/{profile.name}.yaml: set_params: {reason}") from None
        return read_yaml(copy)


def profile_params(profile: Profile, params_path: Path = DEFAULT_PARAMS) -> Params:
    """The params a profile gives, checked as strictly as params.yaml (methods included)."""
    from harness.config.methods import check_methods

    source = f"{params_path} + profiles/{profile.name}.yaml"
    params = parse_params(apply_profile(profile, params_path), source=source)
    check_methods(params, params.methods)
    return params


def dvc_command(profile: Profile, extra: tuple[str, ...] = ()) -> list[str]:
    """`dvc exp run -S ... [extra]` as an argument list (extra: e.g. --temp, --name NAME)."""
    command = ["dvc", "exp", "run"]
    for override in profile.set_params:
        command += ["-S", override]
    return command + list(extra)


def shell_line(command: list[str]) -> str:
    return " ".join(shlex.quote(part) for part in command)
