"""A hard time budget for one generated case: ``with within(20): ...`` raises :class:`Hang` if it runs longer.

The alarm raises a ``BaseException``, so no ``except Exception`` in the code under test can swallow it, and a
hang fails the property instead of stalling CI. Main thread only (``signal.alarm``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

#: Seconds one generated input may take to be read or loaded.
BUDGET_SECONDS = 20


class Hang(BaseException):
    """Raised by the alarm inside a read or load that ran past its budget."""


@contextlib.contextmanager
def within(seconds: int = BUDGET_SECONDS) -> Iterator[None]:
    def alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
