"""Names that become Kubernetes names: RFC 1123 labels, at most 63 characters."""
from __future__ import annotations

import re

from shared.errors import Invalid

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def is_label(value) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL.match(value))


def check_label(value, field: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(f"'{field}' is required.", {"field": field})
    if len(value) > 63:
        raise Invalid(f"'{field}' must be at most 63 characters.", {"field": field})
    if not _LABEL.match(value):
        raise Invalid(
            f"'{field}' must be a DNS label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit.", {"field": field, "value": value[:80]})
    return value
