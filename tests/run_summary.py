"""Lines for pytest's terminal summary from whichever process ran the test.

The fault and fuzz tests append their lines to a file in a directory made for this pytest
process (``MAE_TEST_SUMMARY_DIR``), and the root conftest's ``pytest_terminal_summary`` prints
them: the summary hook lives where every run loads it (a part of ``make test`` that runs no
fault or fuzz test prints nothing), and a process that runs tests for another (a distributed
runner's worker, given the variable) can hand them over the same way.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV = "MAE_TEST_SUMMARY_DIR"


def start() -> None:
    """At configure time, before any test runs."""
    if not os.environ.get(ENV):
        os.environ[ENV] = tempfile.mkdtemp(prefix="mae-test-summary-")


def _file(section: str) -> Path:
    start()  # a process that did not configure pytest (a test's helper script) still has a place
    return Path(os.environ[ENV]) / f"{section}.txt"


def add(section: str, lines: list[str]) -> None:
    """Append ``lines`` to ``section`` (one write: lines of two processes never interleave)."""
    if lines:
        with open(_file(section), "a") as f:
            f.write("".join(f"{line}\n" for line in lines))


def read(section: str) -> list[str]:
    path = _file(section)
    return path.read_text().splitlines() if path.exists() else []


class Lines:
    """A list-like sink (``append``/``extend``) whose lines go to ``section``."""

    def __init__(self, section: str):
        self.section = section

    def append(self, line: str) -> None:
        add(self.section, [line])

    def extend(self, lines) -> None:
        add(self.section, list(lines))

    def __iter__(self):
        return iter(read(self.section))

    def __bool__(self) -> bool:
        return bool(read(self.section))
