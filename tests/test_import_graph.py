"""The import graph of harness/ and methods/: no cycles (function-level imports count), and the
stages that train nothing, and params validation, start without torch or the method zoo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.code_identity import imported_modules

REPO = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    found = []
    for package in ("harness", "methods"):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    graph = {m: imported_modules(m, REPO) - {m} for m in _modules()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


PROBE = """
import json, sys, importlib
from harness.config import load_params
params = load_params({params!r})
for name in {modules!r}:
    importlib.import_module(name)
heavy = ["torch"] + [m for m in sys.modules if m.startswith("methods.")]
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.parametrize(
    "modules",
    [
        [],  # reading and checking params.yaml
        ["harness.stages.compare"],
        ["harness.stages.rank"],
        ["harness.stages.paper"],
        ["harness.stages.fetch"],
    ],
)
def test_params_and_stages_that_train_nothing_start_without_torch(modules) -> None:
    code = PROBE.format(params=str(REPO / "params.yaml"), modules=modules)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert json.loads(out.stdout) == [], out.stdout


def test_list_starts_without_torch() -> None:
    code = (
        "import sys, runpy; sys.argv = ['msabench', 'list'];"
        "from harness.cli import main; main();"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout
    assert "tfn " in out.stdout and "[benchmark]" in out.stdout


def test_mlflow_is_imported_in_one_module() -> None:
    import ast

    importers = set()
    for module in _modules():
        path = REPO / (module.replace(".", "/") + ".py")
        if not path.is_file():
            path = REPO / module.replace(".", "/") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                importers.add(module)
    assert importers == {"harness.tracking"}
