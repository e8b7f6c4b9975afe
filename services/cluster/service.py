"""Entrypoints of the cluster service (clusters, their credentials, apply results and operator reports (MKE)). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class ClusterService(ServiceBase):
    name = "cluster"
