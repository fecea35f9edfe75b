"""Command line: `msabench {fetch,tune,train,probe,robustness,compare,rank,paper,list}` (or
`python -m harness`).

Every DVC stage calls one of these subcommands. User errors print as a single line
(`msabench: error: ...`) with exit status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

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
    fetch.add_argument("--kind", choices=("mosi", "sims"), help="metrics/label range with --format")

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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


def _dispatch(args: argparse.Namespace) -> int:
    from harness import evaluation_stages, pipeline, report_stages
    from harness.config import load_params

    if args.command == "list":
        return _list(args.params)
    if args.command == "paper" and (args.list or (args.name is None and not args.all)):
        return _list_papers(args.list)
    params = load_params(args.params)
    if args.command == "fetch":
        pipeline.fetch(params, args.dataset, args.path, args.file_format, args.kind)
    elif args.command == "tune":
        if args.worker < 0:
            raise ConfigError(f"--worker: expected an index >= 0, got {args.worker}")
        pipeline.tune(params, args.dataset, args.method, args.storage, args.worker)
    elif args.command == "train":
        pipeline.train(params, args.dataset, args.method)
    elif args.command == "probe":
        evaluation_stages.probe(params, args.dataset, args.method)
    elif args.command == "robustness":
        evaluation_stages.robustness(params, args.dataset)
    elif args.command == "compare":
        report_stages.compare(params)
    elif args.command == "rank":
        report_stages.rank(params)
    elif args.command == "paper" and args.all:
        for path in report_stages.papers(params):
            print(path)
    elif args.command == "paper":
        print(report_stages.paper(params, args.name))
    return 0


def _list_papers(asked: bool) -> int:
    from harness.errors import ConfigError
    from harness.paper_tables import paper_table, paper_table_names

    if not asked:
        raise ConfigError("paper: give a table name, --all (params paper.tables) or --list")
    for name in paper_table_names():
        table = paper_table(name)
        print(f"  {name:<20} {table.title}")
    return 0


def _list(params_path: Path) -> int:
    from harness.config import load_params
    from harness.data.sources import SOURCES
    from methods import METHODS

    print("methods:")
    for name in METHODS.names():
        module = sys.modules[METHODS.get(name).__module__]
        summary = (module.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:<10} {summary}")
    print("datasets (declared in params.yaml):")
    params = load_params(params_path)
    for name, config in sorted(params.datasets.items()):
        marker = " [benchmark]" if name in params.benchmark_datasets else ""
        print(f"  {name:<10} source={config.source} kind={config.kind}{marker}")
    print(f"dataset sources: {', '.join(SOURCES.names())}")
    return 0
