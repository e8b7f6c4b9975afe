"""Entrypoints of the deploy service (services, versions, ingresses, templates, deploy records and their logs). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class DeployService(ServiceBase):
    name = "deploy"
