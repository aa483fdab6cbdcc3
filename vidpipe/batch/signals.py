"""SIGINT and SIGTERM stop a run cleanly; a second one stops it at once.

The first signal sets an event the pipeline checks between steps: no new call starts,
files in progress finish (or are discarded), submitted operations stay recorded so the
next run polls them, and projects are marked `stopped`. Atomic writes mean even the
immediate exit of a second signal (130 for SIGINT, 143 for SIGTERM) leaves no truncated
artifact that counts as done. Before the batch starts working (loading, validating and
rendering job files) there is nothing to finish: the first signal exits at once, so a
template that takes long to render never holds a run that was asked to stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

#: Process ids of this run's job processes (:mod:`vidpipe.batch.forked`): stopping at
#: once stops them too.
CHILDREN: set[int] = set()


def _exit_now(signum: int) -> None:
    for pid in list(CHILDREN):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    os._exit(128 + signum)


@dataclass
class Stopper:
    """The stop request a signal made, shared with every job of the run."""

    event: threading.Event = field(default_factory=threading.Event)
    signum: int = 0
    #: Set when the batch starts work that a first signal lets finish cleanly.
    working: bool = False

    def request(self, signum: int) -> None:
        self.signum = self.signum or signum
        self.event.set()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stopper]:
    """Install the handlers for the duration of a run (main thread only)."""
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stopper.event.is_set() or not stopper.working:
            print(f"\nvidpipe: {name} received; stopping now", file=sys.stderr, flush=True)
            _exit_now(signum)
        print(
            f"\nvidpipe: {name} received; finishing files in progress and stopping "
            f"(send {name} again, or Ctrl-C, to stop at once)",
            file=sys.stderr,
            flush=True,
        )
        stopper.request(signum)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopper
    finally:
        for sig, handler in previous.items():
            if stopper.event.is_set():
                # Stopping already: another signal while the run winds down exits at once.
                signal.signal(sig, lambda signum, _frame: _exit_now(signum))
            else:
                signal.signal(sig, handler)
