"""How an ``s2s`` process allocates memory: glibc's malloc asked to keep freed blocks for reuse.

No torch here: the command line calls ``keep_freed_memory`` before anything is imported or allocated,
and ``s2s --help`` stays fast.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

# glibc's malloc gives blocks above a threshold their own pages (mmap) and hands them back when freed,
# and gives the top of its heap back past another; either way the next tensor of that size touches fresh
# pages and takes a page fault on each. Training and beam search allocate and free tensors of a few MB
# every step (logits, gates, gradients), so on a virtual machine, where faults are dear, that cost
# showed as a fifth of a training step. Keeping blocks up to 32 MB (the most glibc allows) in the heap
# and the heap's top in the process makes freed memory be reused: RSS keeps its high-water mark.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def keep_freed_memory(environ: Mapping[str, str] | None = None) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (see above); True if it was asked. Not on
    another C library, and not where the user tunes malloc through the environment (their setting wins)."""
    environ = os.environ if environ is None else environ
    if any(name in environ for name in MALLOC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
