"""Memory-map the arrays of an uncompressed .npz file (as the feature store writes them).

An .npz is a zip archive of .npy members. When a member is stored uncompressed its bytes sit
contiguously in the file, so the array can be mapped with `np.memmap` at the member's data offset
instead of being read into memory: pages are read from disk (or the page cache) only when touched.
Compressed members, which cannot be mapped, are read normally.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from harness.errors import DataError

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header, 30 bytes
_LOCAL_SIGNATURE = b"PK\x03\x04"


def open_npz(path: str | Path, mode: str = "c") -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, memory-mapped where stored uncompressed.

    `mode` is np.memmap's: "c" (copy-on-write: writable in memory, the file never changes) or "r".
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not found; the feature store is incomplete, re-run fetch")
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
            return {
                info.filename.removesuffix(".npy"): _member(path, archive, handle, info, mode)
                for info in archive.infolist()
            }
    except (OSError, ValueError, zipfile.BadZipFile, struct.error) as exc:
        raise DataError(f"{path}: unreadable .npz ({exc})") from None


def _member(path: Path, archive: zipfile.ZipFile, handle, info: zipfile.ZipInfo, mode: str):
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    handle.seek(info.header_offset)
    fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
    if fields[0] != _LOCAL_SIGNATURE:
        raise ValueError(f"member {info.filename}: bad local header")
    name_length, extra_length = fields[-2], fields[-1]
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    handle.seek(start)
    version = np.lib.format.read_magic(handle)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read_header is None:
        raise ValueError(f"member {info.filename}: unsupported .npy version {version}")
    shape, fortran, dtype = read_header(handle)
    if dtype.hasobject:
        raise ValueError(f"member {info.filename}: object arrays are not allowed")
    offset = handle.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order)
