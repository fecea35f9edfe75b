"""Keep freed host memory in the process for reuse instead of giving it back to the OS.

glibc's malloc serves blocks over its mmap threshold (at most 32 MiB) with fresh `mmap`s and
returns them with `munmap` on free. A training step that allocates such blocks every batch
(TFN's post-fusion weight gradient is 64 x 140,481 float32 = 36 MiB) then pays a page fault
for every 4 KiB page of every new block: 122,830 faults per 10-batch TFN epoch, a third of its
CPU step time (183 -> 280 samples/s without them; bench/README.md). With mmap off and a high
trim threshold, freed blocks stay in the heap and the next batch reuses them, already mapped.

Results are bitwise unchanged: only where the bytes live changes. The cost is that the process
keeps its peak heap (about +100 MiB of peak RSS for TFN). Memory-mapped feature stores are not
malloc memory and are unaffected. Elsewhere than glibc (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 1 << 30  # free heap above this is returned to the OS


def reuse_freed_memory() -> bool:
    """Ask glibc to serve every block from the heap and keep up to 1 GiB of freed heap; True
    where it applied (glibc), False elsewhere. Idempotent; affects later allocations only."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
