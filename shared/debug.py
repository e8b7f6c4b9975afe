"""``kill -USR1 <pid>``: every green thread's stack, written to the process's stderr.

An eventlet process that stops making progress shows nothing useful to py-spy
(one OS thread, the hub). This handler walks the live greenlets instead and
prints where each one waits, so a stuck consumer or a worker blocked on a pool
can be found in a running replica without restarting it.
"""
from __future__ import annotations

import gc
import os
import signal
import sys
import time
import traceback


def green_stacks() -> list[str]:
    import greenlet

    stacks = []
    for obj in gc.get_objects():
        try:
            if not isinstance(obj, greenlet.greenlet) or obj.gr_frame is None:
                continue
        except ReferenceError:  # a weak proxy whose object is gone (isinstance asks it)
            continue
        stacks.append("".join(traceback.format_stack(obj.gr_frame)))
    return stacks


def _dump(signum, frame) -> None:
    try:
        stacks = green_stacks()
        sys.stderr.write(f"=== {time.strftime('%H:%M:%S')} pid {os.getpid()}: {len(stacks)} green threads ===\n")
        for n, stack in enumerate(stacks, 1):
            sys.stderr.write(f"--- green thread {n}\n{stack}")
        sys.stderr.write("=== end of green threads ===\n")
        sys.stderr.flush()
    except Exception as exc:  # a debugging aid must never take the process down
        sys.stderr.write(f"green thread dump failed: {exc!r}\n")


def install() -> None:
    if hasattr(signal, "SIGUSR1"):
        try:
            signal.signal(signal.SIGUSR1, _dump)
        except ValueError:  # not the main thread (imported by a test runner's worker)
            pass
