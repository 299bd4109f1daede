"""CPU settings that speed training up without changing what is learned.

Freed memory: glibc serves large blocks (a batch's activations, the weight gradients: 0.4-1.3 MB
each for the classic MLP) with mmap and returns them with munmap. In a process that has not yet
freed large blocks (a small data set, ``vaekit evaluate``) every step of the classic MLP faulted in
and zeroed about 600 fresh pages: ~1.5 ms of kernel time in a 5-7 ms step (measured with
getrusage on our 2-core machine). Raising glibc's mmap and trim thresholds keeps freed blocks in
the process for reuse, so no step faults. (A process that loaded a large data set has usually
raised glibc's dynamic threshold already; then this changes nothing.)

Subnormal floats: when a weight's gradient stays zero (the weights of always-dark pixels, say),
Adam's first moment decays by beta1 each step into the subnormal range within about two epochs, and
arithmetic on subnormals takes a slow path. With 20% of its state subnormal, the fused Adam kernel
for the classic MLP took 0.27 ms instead of 0.16 ms on our AMD EPYC (2 threads), and 0.19 ms with
subnormals flushed; Intel cores pay more (shared/reference/perf-anchors.md saw eager epochs slow
down 15-25% after the first). Flushing subnormals to zero (FTZ/DAZ, TensorFlow's default on CPU)
removes the cost. ``torch.set_flush_denormal`` only sets the calling thread's control register, so
this also runs it once on every thread of the OpenMP team that torch and MKL use; the registers are
per thread and the team's threads persist.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_done_for: int | None = None
_allocator_tuned = False

# glibc mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 2**20


def tune() -> None:
    """Apply both settings (idempotent; a no-op where the platform lacks them)."""
    keep_freed_memory()
    flush_denormals()


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed blocks of up to 32 MiB instead of returning them to the kernel."""
    global _allocator_tuned
    if _allocator_tuned:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**30) == 1
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return False
    _allocator_tuned = ok
    return ok


def _openmp_runtime() -> ctypes.CDLL | None:
    """The GNU OpenMP runtime that torch ships (or the system's), if torch uses one."""
    bundled = Path(torch.__file__).parent / "lib" / "libgomp.so.1"
    for name in (str(bundled), "libgomp.so.1"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def flush_denormals() -> bool:
    """Flush subnormals to zero on this thread and on every OpenMP worker; True if all took it."""
    global _done_for
    # Always for the calling thread: other libraries (ONNX Runtime, say) may reset its register.
    if not torch.set_flush_denormal(True):
        return False  # the CPU does not support it
    threads = torch.get_num_threads()
    if _done_for == threads:
        return True
    runtime = _openmp_runtime()
    if threads > 1 and runtime is not None and hasattr(runtime, "GOMP_parallel"):
        results: list[bool] = []
        body = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: results.append(torch.set_flush_denormal(True)))
        runtime.GOMP_parallel(body, None, ctypes.c_uint(threads), ctypes.c_uint(0))
        if not all(results):
            log.debug("flush-to-zero was refused on some OpenMP threads")
            return False
    _done_for = threads
    return True


BUSY = 1.5  # load average per core above which a machine counts as oversubscribed


def busy_machine_warning(threads: int, load: float, cores: int) -> str | None:
    """A line when torch's ``threads`` intra-op threads would share ``cores`` with a load average of
    ``load`` (other processes): each parallel region then waits for a descheduled thread. With the
    two cores here ten times oversubscribed, the seq-vae step ran 17 samples/s on two threads against
    186 on one (bench/seq_reference.py, BENCHMARKS.md), and the reference loop alike."""
    if threads <= 1 or load <= BUSY * cores:
        return None
    return (f"this machine is busy (load average {load:.1f} on {cores} cores) and torch trains on {threads} threads, "
            "which then wait on each other: one thread can be several times faster; set train.threads=1")


def check_busy_machine(threads: int) -> str | None:
    """:func:`busy_machine_warning` for this machine now (None where the load average is unknown)."""
    import os

    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    return busy_machine_warning(threads, load, os.cpu_count() or 1)
