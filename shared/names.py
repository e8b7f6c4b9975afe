"""Names that become Kubernetes names: RFC 1123 labels, at most 63 characters; the name of a
version's objects (docs/contracts.md), which the deploy service renders and the cluster service reads."""
from __future__ import annotations

import hashlib
import re

from shared.errors import Invalid, ReservedName

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


# Namespaces an application may never be: the cluster's own, the default one, and those
# MAE and its operator run in (k8s/base, k8s/operator). RESERVED_NAMESPACES (config) adds more.
RESERVED_NAMESPACES = ("default", "mae", "mae-system")
RESERVED_PREFIXES = ("kube-", "openshift-")


def reserved_names(extra) -> set[str]:
    """``RESERVED_NAMESPACES`` from config (a list, or a comma-separated string) plus ours."""
    if isinstance(extra, str):
        extra = [part.strip() for part in extra.replace("[", "").replace("]", "").split(",")]
    return set(RESERVED_NAMESPACES) | {str(e).strip() for e in extra or () if str(e).strip()}


def check_not_reserved(name: str, extra=(), field: str = "name") -> str:
    """422 ``reserved_name`` for a name that is a system or MAE namespace."""
    if name in reserved_names(extra) or name.startswith(RESERVED_PREFIXES):
        raise ReservedName(f"{name!r} is reserved for the cluster's system or for MAE itself; "
                           "choose another name.", {"field": field, "value": name})
    return name


def object_name(service: str, version: str) -> str:
    """``S-V``; when that is longer than a DNS label, a readable prefix plus a hash,
    so two long names that share a prefix still get different objects."""
    name = f"{service}-{version}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"
