"""Command line: `msabench {fetch,tune,train,probe,robustness,compare,rank,paper}` (the DVC
stages, each a module of harness/stages/), plus `list`, `check` and `profile` (or
`python -m harness`).

User errors print as a single line (`msabench: error: ...`) with exit status 2; nothing is left
half-written.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.data.spec import DATASET_KINDS
from harness.errors import ConfigError, MsabenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msabench",
        description="Reproducibility benchmark harness for multimodal sentiment analysis.",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="build a dataset's canonical feature store")
    fetch.add_argument("dataset")
    fetch.add_argument("--path", type=Path, help="local copy of the dataset's source files")
    fetch.add_argument(
        "--format", dest="file_format", help="read --path in this format (mmsa, ...)"
    )
    fetch.add_argument(
        "--kind", choices=DATASET_KINDS, help="task, metrics and label range with --format"
    )

    tune = sub.add_parser("tune", help="tune a method's hyperparameters on validation")
    tune.add_argument("dataset")
    tune.add_argument("method")
    tune.add_argument(
        "--storage",
        help="PostgreSQL URL of a study shared by several workers (default: the local journal)",
    )
    tune.add_argument(
        "--worker", type=int, default=0, help="this worker's index: sampler seed offset (0, 1, ...)"
    )
    train = sub.add_parser("train", help="train a method over all seeds and evaluate on test")
    train.add_argument("dataset")
    train.add_argument("method")

    probe = sub.add_parser(
        "probe", help="linear probes of a factorized model's representations for true latents"
    )
    probe.add_argument("dataset")
    probe.add_argument("method", nargs="?", default="fine")
    robustness = sub.add_parser(
        "robustness", help="evaluate every trained model under missing modalities (all rates)"
    )
    robustness.add_argument("dataset")
    sub.add_parser("compare", help="significance-tested comparison tables and figures")
    sub.add_parser("rank", help="Friedman/Nemenyi across datasets and critical-difference diagrams")
    paper = sub.add_parser(
        "paper", help="regenerate a published table beside this project's runs (--list: names)"
    )
    paper.add_argument("name", nargs="?", help="registered paper table (see --list)")
    paper.add_argument("--list", action="store_true", help="list the registered paper tables")
    paper.add_argument("--all", action="store_true", help="every table in params paper.tables")
    sub.add_parser("list", help="registered methods and datasets")
    sub.add_parser("check", help="check params.yaml, every method's section included")
    profile = sub.add_parser(
        "profile", help="check a profile (profiles/NAME.yaml); print or --run its dvc exp run"
    )
    profile.add_argument("name", nargs="?", help="profile name (none: list the profiles)")
    profile.add_argument(
        "--run", action="store_true", help="run `dvc exp run -S ...` now; after --: its options"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `msabench profile NAME [--run] -- DVC OPTIONS`: what follows -- goes to dvc exp run
    passed = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    args = build_parser().parse_args(argv)
    args.dvc_options = passed
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return _dispatch(args)
    except MsabenchError as exc:
        print(f"msabench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        print(f"msabench: error: {_write_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("msabench: interrupted", file=sys.stderr)
        return 130


# a full disk, an unwritable or read-only results folder, a file where a folder should be
_WRITE_ERRORS = {
    errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
    errno.EISDIR, errno.EEXIST,
}  # fmt: skip


def _write_error(exc: OSError) -> str:
    """One line: the file, what went wrong, and that nothing half-written was left behind."""
    where = exc.filename or "a results file"
    if exc.filename2:
        where = f"{where} -> {exc.filename2}"
    return (
        f"cannot write {where}: {exc.strerror or exc} (errno {errno.errorcode.get(exc.errno, '?')}"
        "); outputs are written to temporary files and renamed, so no partial file was left"
    )


# the stages whose work builds methods: their methods' own checks run before they start
def _stage_methods(args: argparse.Namespace, params) -> tuple[str, ...]:
    if args.command in ("tune", "train", "probe"):
        return (args.method,)
    if args.command == "robustness":
        return tuple(params.benchmark.methods)
    return ()


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; a stage's module is imported only when that stage runs, so stages that
    train nothing (compare, rank, paper, list) start without torch."""
    from harness.config import load_params

    if args.command == "list":
        return _list(args.params)
    if args.command == "paper" and (args.list or (args.name is None and not args.all)):
        return _list_papers(args.list)
    if args.command == "profile":
        return _profile(args)
    params = load_params(args.params)
    if args.command == "check":
        return _check(params)
    if args.command == "tune" and args.worker < 0:
        raise ConfigError(f"--worker: expected an index >= 0, got {args.worker}")
    methods = _stage_methods(args, params)
    if methods:
        from harness.config.methods import check_methods

        check_methods(params, methods)
    if params.executor.kind == "slurm" and args.command in ("tune", "train", "robustness"):
        from harness.execution.dispatch import RUNNERS  # jobs do the work; this waits for them

        RUNNERS[args.command](params, *_STAGE_ARGS[args.command](args))
        return 0
    stage = importlib.import_module(f"harness.stages.{args.command}")
    if args.command == "paper" and not args.all:
        print(stage.run_one(params, args.name))
        return 0
    result = stage.run(params, *_STAGE_ARGS[args.command](args))
    if args.command == "paper":
        print("\n".join(str(path) for path in result))
    return 0


# what each stage's `run(params, ...)` takes from the command line
_STAGE_ARGS = {
    "fetch": lambda a: (a.dataset, a.path, a.file_format, a.kind),
    "tune": lambda a: (a.dataset, a.method, a.storage, a.worker),
    "train": lambda a: (a.dataset, a.method),
    "probe": lambda a: (a.dataset, a.method),
    "robustness": lambda a: (a.dataset,),
    "compare": lambda a: (),
    "rank": lambda a: (),
    "paper": lambda a: (),
}


def _check(params) -> int:
    """`msabench check`: every section, and every method's own checks of its section."""
    from harness.config.methods import check_methods
    from methods import METHOD_MODULES

    checked = sorted({*params.methods, *params.benchmark.methods})
    check_methods(params, checked)
    unused = sorted(set(METHOD_MODULES) - set(checked))
    print(
        f"{params.source}: valid: {len(params.datasets)} datasets; the sections of "
        f"{len(checked)} methods checked against the methods ({', '.join(checked)})"
        + (f"; not benchmarked and without a section: {', '.join(unused)}" if unused else "")
    )
    return 0


def _profile(args: argparse.Namespace) -> int:
    """`msabench profile [NAME] [--run] [-- DVC OPTIONS]`."""
    import subprocess

    from harness.config import profiles

    if args.name is None:
        for name in profiles.profile_names():
            print(f"  {name:<10} {profiles.load_profile(name).description.splitlines()[0]}")
        return 0
    profile = profiles.load_profile(args.name)
    profiles.profile_params(profile, args.params)
    command = profiles.dvc_command(profile, tuple(args.dvc_options))
    if not args.run:
        print(profiles.shell_line(command))
        return 0
    return subprocess.run(command, check=False).returncode


def _list_papers(asked: bool) -> int:
    from harness.papers.tables import paper_table, paper_table_names

    if not asked:
        raise ConfigError("paper: give a table name, --all (params paper.tables) or --list")
    for name in paper_table_names():
        table = paper_table(name)
        print(f"  {name:<20} {table.title}")
    return 0


def _list(params_path: Path) -> int:
    """Methods (from the catalog: their modules' first docstring line, read without importing
    them), declared datasets and dataset sources."""
    from harness.config import load_params
    from harness.data.declaration import SOURCE_KEYS
    from methods import METHOD_MODULES

    print("methods:")
    for name in METHOD_MODULES.names():
        print(f"  {name:<10} {_summary(METHOD_MODULES.get(name))}")
    print("datasets (declared in params.yaml):")
    params = load_params(params_path)
    for name, config in sorted(params.datasets.items()):
        marker = " [benchmark]" if name in params.benchmark.datasets else ""
        print(f"  {name:<10} source={config.source} kind={config.kind}{marker}")
    print(f"dataset sources: {', '.join(SOURCE_KEYS)}")
    return 0


def _summary(module: str) -> str:
    """The first line of a module's docstring, read from its source."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)
    source = Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
