"""What the fuzzer ran; conftest prints it in pytest's terminal summary (CI's log)."""

COUNTS = {"member": 0, "admin": 0}
