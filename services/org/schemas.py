"""Message shapes of the org service: the events it publishes, each built by one function
here (used by the service and by the tests that play its part).

Published (envelope from ``shared.events``, source ``org``):

* ``application_created`` — ``ApplicationCreated``: the cluster service makes the app's
  namespaces with this policy.
* ``app_policy_changed`` — ``AppPolicyChanged``: the cluster service relabels and re-quotas
  the app's namespaces.
* ``application_deleted`` — ``ApplicationDeleted``: deploy, cluster and notify forget the
  app (by id: a later app of the same name is someone else).

RPC answers are plain dicts from ``domain.app_dict`` / ``domain.member_dict``.
"""
from __future__ import annotations

from typing import TypedDict

APPLICATION_CREATED = "application_created"
APP_POLICY_CHANGED = "app_policy_changed"
APPLICATION_DELETED = "application_deleted"


class ApplicationCreated(TypedDict):
    name: str
    display_name: str
    app_id: int
    policy: dict


class AppPolicyChanged(TypedDict):
    app: str
    app_id: int
    policy: dict


class ApplicationDeleted(TypedDict):
    name: str
    app_id: int


def application_created(name: str, display_name: str, app_id: int, policy: dict) -> ApplicationCreated:
    return {"name": name, "display_name": display_name, "app_id": app_id, "policy": policy}


def app_policy_changed(app: str, app_id: int, policy: dict) -> AppPolicyChanged:
    return {"app": app, "app_id": app_id, "policy": policy}


def application_deleted(name: str, app_id: int) -> ApplicationDeleted:
    return {"name": name, "app_id": app_id}
