"""Loading untrusted pickles (MMSA, MulT/CMU feature files) without executing code from them.

`pickle.load` calls whatever global a file names, so a downloaded "feature file" can run
`os.system`. `safe_load` resolves globals through an explicit allowlist instead of importing them:
only what numpy array reconstruction needs, plus builtin containers and scalars. Everything else is
refused with a one-line DataError naming the file and the global.

The numpy names were checked against the pickles numpy writes: numpy 2.x writes
`numpy._core.multiarray._reconstruct`/`scalar`, `numpy.ndarray`, `numpy.dtype` at protocols 0-4 and
`numpy._core.numeric._frombuffer` at protocol 5; numpy 1.x (and Python 2) wrote the same names under
`numpy.core` (see the Python 2 pickles in numpy's own test suite, e.g. `test_regression.py`).
Python 3 at protocols 0-2 writes bytes as `_codecs.encode(text, "latin1")` and sets, frozensets,
complex numbers and bytearrays through their builtin types (`__builtin__` in Python 2 pickles).

Files are read with `encoding="latin1"`, which is how numpy arrays and byte strings pickled by
Python 2 load under Python 3 (numpy re-encodes the latin1 text to the original bytes).
"""

from __future__ import annotations

import codecs
import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from harness.errors import DataError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_REFUSED_HINT = "only numpy arrays and builtin containers are allowed; the file may be malicious"


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """`_codecs.encode` as protocol 0-2 pickles use it for bytes: latin1 only."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _no_size_argument(kind: type) -> Any:
    """`bytes`/`bytearray` without the `kind(n)` form, which would allocate n zero bytes."""

    def construct(*args: Any) -> Any:
        if args and not isinstance(args[0], str | bytes | bytearray):
            raise pickle.UnpicklingError(f"refused {kind.__name__}() of a {type(args[0]).__name__}")
        return kind(*args)

    return construct


def _builtins(module: str) -> dict[tuple[str, str], Any]:
    constructors = {
        "set": set,
        "frozenset": frozenset,
        "complex": complex,
        "bytes": _no_size_argument(bytes),
        "bytearray": _no_size_argument(bytearray),
    }
    return {(module, name): obj for name, obj in constructors.items()}


def _numpy_names(core: str) -> dict[tuple[str, str], Any]:
    return {
        (f"{core}.multiarray", "_reconstruct"): _multiarray._reconstruct,
        (f"{core}.multiarray", "scalar"): _multiarray.scalar,
        (f"{core}.numeric", "_frombuffer"): _numeric._frombuffer,
    }


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **_numpy_names("numpy.core"),  # numpy 1.x and Python 2
    **_numpy_names("numpy._core"),  # numpy 2.x
    **_builtins("builtins"),
    **_builtins("__builtin__"),  # Python 2
    ("_codecs", "encode"): _latin1_encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose globals come only from ALLOWED_GLOBALS (module, name) pairs."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        super().__init__(handle, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            refused = f"{module}.{name}".encode("unicode_escape").decode("ascii")
            raise DataError(f"{self._path}: refused to unpickle '{refused}' ({_REFUSED_HINT})")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._path}: refused a persistent id in the pickle ({_REFUSED_HINT})")


def safe_load(path: Path) -> Any:
    """Unpickle `path` admitting only numpy arrays/scalars/dtypes and builtin containers
    (dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool, None).

    Raises DataError (one line, naming the file) for a refused global, an unreadable file, or a
    truncated or corrupt pickle."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle, path).load()
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except Exception as exc:  # anything else (EOFError, UnpicklingError, ValueError...): malformed
        detail = " ".join(str(exc).split()) or "no detail"
        raise DataError(f"{path}: not a complete pickle ({type(exc).__name__}: {detail})") from None
