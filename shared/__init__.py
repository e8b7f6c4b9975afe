"""MAE's own plumbing, shared by every process (see docs/architecture.md)."""
from shared.compat import repair_urllib3_ssl

repair_urllib3_ssl()
