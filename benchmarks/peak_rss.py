"""Peak resident memory of this process above a starting point, for CPU benchmarks.

torch's CPU allocations are invisible to tracemalloc and `ru_maxrss` cannot be reset within a process. On Linux the
kernel's own high-water mark can: writing 5 to /proc/self/clear_refs resets `VmHWM` (/proc/self/status) to the
current RSS, so the peak of a `with` block is exact, however short the peak was. Where that file cannot be written
(other systems, some containers), a thread samples /proc/self/statm every 2 ms instead, which can miss short peaks
on a busy machine (`method` says which was used).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

CLEAR_REFS, STATUS = "/proc/self/clear_refs", "/proc/self/status"


def high_water_mark() -> int:
    """`VmHWM` in bytes."""
    with open(STATUS) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no VmHWM in {STATUS}")


def reset_high_water_mark() -> bool:
    """Reset `VmHWM` to the current RSS (Linux `clear_refs` 5); False where that is not possible."""
    try:
        with open(CLEAR_REFS, "w") as f:
            f.write("5")
        high_water_mark()
        return True
    except OSError:
        return False


class PeakRSS:
    """Peak RSS in bytes above the RSS at `__enter__` (`peak`): the kernel's reset high-water mark, else sampled."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread: threading.Thread | None = None
        self.method = ""

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.start)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRSS:
        # `start` may be lowered by the caller after entering (a baseline taken earlier); the peak is then still
        # measured from the moment of entry on, relative to that baseline.
        self.start = self.rss()
        if reset_high_water_mark():
            self.method = "VmHWM"
        else:
            self.method = "sampled"
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if self._thread is None:
            self.peak = max(self.peak, high_water_mark() - self.start)
        else:
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, self.rss() - self.start)
