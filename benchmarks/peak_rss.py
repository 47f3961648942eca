"""Peak resident memory of this process above a starting point, for CPU benchmarks.

torch's CPU allocations are invisible to tracemalloc and `ru_maxrss` cannot be reset within a process, so a thread
samples /proc/self/statm every 2 ms while the `with` block runs.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any


class PeakRSS:
    """Peak RSS in bytes above the RSS at `__enter__` (`peak`), sampled by a thread."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s, self.peak, self._stop = interval_s, 0, threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.start)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.start = self.rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss() - self.start)
