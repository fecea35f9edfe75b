"""Which code a stage runs, found by walking imports, and a digest of it.

A tuning study's name and the key of the train stage's resume store carry `code_digest(stage,
method)`: a sha256 over the source of every module the stage can run for that method (the
import closure of `harness.stages.<stage>` and `methods.<method>`), so editing any of them
starts a fresh study and retrains every seed, exactly when DVC re-runs the stage.
tests/test_dvc_layout.py checks that each stage's `deps` in dvc.yaml list the same modules.

The walk reads source, not `sys.modules`: every `import`/`from ... import` in a module counts,
function-level imports included (stages import what only some commands need inside functions);
imports under `if TYPE_CHECKING:` do not (they never run). It follows `harness.*` and `methods.*`
only, and stops at `NEUTRAL` modules: those that cannot change a stage's numbers or outputs
(errors, paths, atomic writes, configuration parsing, MLflow logging, provenance facts, the
versioned record types, the method catalog). A package's `__init__` is part of the closure only
where it is imported by name.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the project: harness/ and methods/ side by side
PACKAGES = ("harness", "methods")

# modules (and packages, with everything below them) that cannot change what a stage computes
NEUTRAL = (
    "harness.cli",
    "harness.code_identity",
    "harness.config",
    "harness.errors",
    "harness.io_utils",
    "harness.paths",
    "harness.provenance",
    "harness.records",
    "harness.registry",
    "harness.schema",
    "harness.tracking",
    "methods",  # the catalog of method names (methods/__init__.py), not the methods
)


def is_neutral(module: str) -> bool:
    """True for a NEUTRAL module or a module inside a NEUTRAL package (`methods.<m>` is not:
    only the bare catalog module `methods` is neutral)."""
    return any(
        module == name or (module.startswith(name + ".") and name != "methods") for name in NEUTRAL
    )


def module_file(module: str, root: Path | None = None) -> Path | None:
    """The source file of a dotted module under `root` (default `ROOT`): a/b.py or
    a/b/__init__.py; None if neither exists (a name imported from a module, not a module)."""
    base = (root or ROOT).joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(module: str, root: Path | None = None) -> set[str]:
    """The project modules (`harness.*`, `methods.*`) `module`'s source imports, anywhere in
    it except under `if TYPE_CHECKING:`."""
    path = module_file(module, root)
    if path is None:
        return set()
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if module_file(child, root) else node.module)
    return {m for m in found if m.split(".")[0] in PACKAGES and module_file(m, root)}


def _runtime_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_closure(roots: Iterable[str], root: Path | None = None) -> list[str]:
    """The non-neutral modules reachable from `roots` through imports, sorted."""
    reached: set[str] = set()
    frontier = [m for m in roots if not is_neutral(m)]
    while frontier:
        module = frontier.pop()
        if module in reached:
            continue
        reached.add(module)
        frontier.extend(m for m in imported_modules(module, root) if not is_neutral(m))
    return sorted(reached)


def stage_roots(stage: str, methods: Iterable[str] = ()) -> list[str]:
    """The entry modules of a stage run: the stage module and the methods it loads by name."""
    return [f"harness.stages.{stage}", *(f"methods.{m}" for m in methods)]


def stage_files(stage: str, methods: Iterable[str] = (), root: Path | None = None) -> list[Path]:
    """The source files a stage runs (relative to `root`, default `ROOT`), sorted."""
    root = root or ROOT
    modules = import_closure(stage_roots(stage, methods), root)
    return sorted(module_file(m, root).relative_to(root) for m in modules)  # type: ignore[union-attr]


def code_digest(stage: str, methods: tuple[str, ...] = (), root: Path | None = None) -> str:
    """sha256 over the relative path and bytes of every file `stage_files` lists."""
    return _digest(stage, tuple(methods), root or ROOT)


@functools.cache
def _digest(stage: str, methods: tuple[str, ...], root: Path) -> str:
    digest = hashlib.sha256()
    for relative in stage_files(stage, methods, root):
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update((root / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def forget_digests() -> None:
    """Drop the digests computed so far (kept for the life of a process, since sources do not
    change while a stage runs; tests that edit sources call this)."""
    _digest.cache_clear()
