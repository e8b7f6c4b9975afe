"""What the fault suite measured; conftest prints it in pytest's terminal summary (from the
pytest-xdist worker that ran the wave too: tests/run_summary.py)."""
from tests.run_summary import Lines

SUMMARY = Lines("fault suite")
