"""What the fault suite measured; conftest prints it in pytest's terminal summary."""

SUMMARY: list[str] = []
