"""The number of threads numpy's BLAS (OpenBLAS) runs one matrix product on.

``evaluate`` runs its two passes (float forward, q7 simulator) side by side, one per core,
each a stream of mid-sized products. OpenBLAS would split every one of those products over
all cores as well; two passes doing so fight over the cores, and on a loaded machine a
product waits for its slowest thread (measured: two to three times slower than one thread
per product). Python has no standard way to set this at run time, so OpenBLAS's own
``*_set_num_threads`` is called through ctypes; with another BLAS, or none found, nothing
changes (results never depend on it: a product's sums are split over rows, not terms).
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

#: (set, get) symbol names of OpenBLAS builds: numpy's wheels (scipy-openblas, 64-bit ints), plain.
_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("openblas_set_num_threads", "openblas_get_num_threads"))


def _openblas() -> Optional[tuple[Callable[[int], None], Callable[[], int]]]:
    """OpenBLAS's (set, get) thread-count functions, if this process has loaded it."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(library, set_name) and hasattr(library, get_name):
                return getattr(library, set_name), getattr(library, get_name)
    return None


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Run the block with OpenBLAS products on ``count`` threads, then restore the setting."""
    api = _openblas()
    if api is None:
        yield
        return
    set_threads, get_threads = api
    before = int(get_threads())
    set_threads(max(1, count))
    try:
        yield
    finally:
        set_threads(before)
