"""Kubernetes names and labels of what MAE renders (docs/contracts.md)."""
from __future__ import annotations

from shared.names import object_name  # the contract's S-V name; the cluster service reads by it

MANAGED_BY = "app.kubernetes.io/managed-by"
APP = "mae.io/app"
SERVICE = "mae.io/service"
VERSION = "mae.io/version"
INGRESS = "mae.io/ingress"
RECORD_ID = "mae.io/record-id"


def routed_name(service: str) -> str:
    """The service's stable Service: its selector names the routed version, so traffic moves
    in one step when a route changes it (``POST …/route``); in-cluster clients reach the
    routed version at ``http://<service>``. Ingress routes without a ``version`` point here."""
    return service


def secret_env_name(service: str, version: str) -> str:
    """The Secret that carries a version's secret_env to its pods (domain/secret_env.py)."""
    return f"{object_name(service, version)}-secret-env"


def version_labels(app: str, service: str, version: str) -> dict:
    return {MANAGED_BY: "mae", APP: app, SERVICE: service, VERSION: version}


def ingress_labels(app: str, ingress: str) -> dict:
    return {MANAGED_BY: "mae", APP: app, INGRESS: ingress}


def selector(app: str, service: str, version: str) -> dict:
    """What a version's Deployment selects its pods by (immutable once created)."""
    return {APP: app, SERVICE: service, VERSION: version}
