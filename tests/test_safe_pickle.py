"""safe_load: numpy arrays and builtin containers round-trip; code-running pickles are refused."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from harness.data.safe_pickle import safe_load
from harness.errors import DataError

PROTOCOLS = [2, 3, 4, 5]

# Python 2 pickles written by numpy 1.x, from numpy's own test suite (test_regression.py): they
# load only with encoding="latin1", which safe_load uses.
PY2_INT8_ARRAY = (
    b"cnumpy.core.multiarray\n_reconstruct\np0\n(cnumpy\nndarray\np1\n(I0\ntp2\nS'b'\np3\ntp4\nRp5"
    b"\n(I1\n(I1\ntp6\ncnumpy\ndtype\np7\n(S'i1'\np8\nI0\nI1\ntp9\nRp10\n(I3\nS'|'\np11\nNNNI-1\n"
    b"I-1\nI0\ntp12\nbI00\nS'\\x81'\np13\ntp14\nb."
)
PY2_FLOAT64_SCALAR = (
    b"cnumpy.core.multiarray\nscalar\np0\n(cnumpy\ndtype\np1\n(S'f8'\np2\nI0\nI1\ntp3\nRp4\n(I3\n"
    b"S'<'\np5\nNNNI-1\nI-1\nI0\ntp6\nbS'O\\x81\\xb7Z\\xaa:\\xabY'\np7\ntp8\nRp9\n."
)


def sample_payload() -> dict:
    rng = np.random.default_rng(0)
    return {
        "train": {
            "text": rng.standard_normal((3, 4, 5)).astype(np.float32),
            "audio": np.array([[[-np.inf, 1.0]]], dtype=np.float64),
            "lengths": np.arange(3, dtype=np.int64),
            "small": np.array([-1, 2], dtype=np.int8),
            "mask": np.array([True, False]),
            "ids": np.array(["a$_$1", "b$_$2"]),
            "bytes_ids": np.array([b"x", b"yz"]),
            "object_ids": np.array(["v", ("a", 1)], dtype=object),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            "strided": np.arange(10.0)[::3],
            "big_endian": np.arange(3, dtype=">f4"),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "scalar": np.float32(1.5),
        },
        "nested": [1, 2.5, "three", b"four", None, True, (1, (2,)), {"k": [3]}],
        "containers": [{1, 2}, frozenset({"a"}), 1 + 2j, bytearray(b"ab"), b"", bytearray()],
        "ordered": collections.OrderedDict(z=1, a=2),
    }


def assert_same(loaded, expected) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray)
        # numpy itself returns a big-endian array in native order at protocols < 5
        assert loaded.dtype.newbyteorder("=") == expected.dtype.newbyteorder("=")
        assert loaded.shape == expected.shape
        if expected.dtype.hasobject:
            assert loaded.tolist() == expected.tolist()
        else:
            np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert type(loaded) is type(expected) and list(loaded) == list(expected)
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert type(loaded) is type(expected) and len(loaded) == len(expected)
        for a, b in zip(loaded, expected, strict=True):
            assert_same(a, b)
    else:
        assert type(loaded) is type(expected) and loaded == expected


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_round_trip(tmp_path: Path, protocol: int) -> None:
    payload = sample_payload()
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    loaded = safe_load(path)
    assert_same(loaded, payload)
    assert loaded["train"]["text"].flags.writeable  # the readers fill and zero it in place


def test_python2_numpy1_pickles_load_with_latin1(tmp_path: Path) -> None:
    (tmp_path / "array.pkl").write_bytes(PY2_INT8_ARRAY)
    (tmp_path / "scalar.pkl").write_bytes(PY2_FLOAT64_SCALAR)
    np.testing.assert_array_equal(safe_load(tmp_path / "array.pkl"), np.array([-127], np.int8))
    assert safe_load(tmp_path / "scalar.pkl") == np.float64(9e123)


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _malicious_pickles(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes that would create `marker`, the global safe_load must refuse)."""
    touch = f"touch {marker}"
    create = f"open({str(marker)!r}, 'w')"
    system = os.system.__module__  # "posix" on Linux and macOS
    return {
        "reduce_p2": (pickle.dumps(_RunsShell(touch), protocol=2), f"{system}.system"),
        "reduce_p4": (pickle.dumps(_RunsShell(touch), protocol=4), f"{system}.system"),
        "reduce_p5": (pickle.dumps({"train": [_RunsShell(touch)]}, protocol=5), f"{system}.system"),
        "os_global": (f"cos\nsystem\n(V{touch}\ntR.".encode(), "os.system"),
        "inst_opcode": (f"(V{touch}\nios\nsystem\n.".encode(), "os.system"),
        "builtins_eval": (f"cbuiltins\neval\n(V{create}\ntR.".encode(), "builtins.eval"),
        "py2_builtin_eval": (f"c__builtin__\neval\n(V{create}\ntR.".encode(), "__builtin__.eval"),
        "getattr": (b"cbuiltins\ngetattr\n(cbuiltins\nobject\nVx\ntR.", "builtins.getattr"),
        "import": (b"cbuiltins\n__import__\n(Vos\ntR.", "builtins.__import__"),
        "subprocess": (f"csubprocess\nPopen\n(V{touch}\ntR.".encode(), "subprocess.Popen"),
        "numpy_other": (b"cnumpy\nload\n(Vx.npy\ntR.", "numpy.load"),
    }


@pytest.mark.parametrize("case", sorted(_malicious_pickles(Path("m"))))
def test_code_running_pickles_are_refused(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    data, refused = _malicious_pickles(marker)[case]
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(DataError) as info:
        safe_load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused to unpickle '{refused}'")
    assert "the file may be malicious" in message and "\n" not in message
    assert not marker.exists()


def test_plain_pickle_would_run_the_payload(tmp_path: Path) -> None:
    """Control: the crafted payload is real (plain pickle.loads creates the marker)."""
    marker = tmp_path / "pwned"
    data, _ = _malicious_pickles(marker)["builtins_eval"]
    pickle.loads(data)
    assert marker.exists()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1], id="no_stop"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"\x80\x04not a pickle at all", id="garbage"),
    ],
)
def test_corrupt_pickles_give_one_line_errors(tmp_path: Path, damage) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(damage(pickle.dumps(sample_payload(), protocol=4)))
    with pytest.raises(DataError, match=r"broken\.pkl: not a complete pickle \(") as info:
        safe_load(path)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent\.pkl: unreadable"):
        safe_load(tmp_path / "absent.pkl")
