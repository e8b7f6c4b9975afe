"""The order of an operator's status reports about one Deployment.

A report describes a Deployment together with its ReplicaSets and Pods, which the
operator learns from three watch streams. Each stream is ordered, but the streams
are not ordered with each other: the Pod stream may deliver resourceVersion 909 (an
old pod deleted) while the Deployment stream has not yet delivered 908 (the rollout
complete). Stamping reports with the highest resourceVersion seen alone would give
the stale report and the fresh one that follows the same stamp, and the fresh one
would be dropped as a duplicate: a record would stay ``progressing`` on a rollout
the cluster had finished.

So a report carries, besides ``resource_version`` (the highest version seen for the
Deployment and its parts), ``versions``: the highest version the operator has seen
in each stream for this Deployment. Within one operator each of those only grows,
and a change in any part raises its own stream's number, so ordering reports by

    (resource_version, versions.deployment, versions.replicasets, versions.pods)

puts every later view after every earlier one. ``key`` renders that as a string
that sorts the same way in Python and in SQL (fixed-width digits); a report
without ``versions`` (an older operator, the MKE engine, a full-state marker)
compares by its resource_version alone and sorts before a report of the same
resource_version that has them.
"""
from __future__ import annotations

WIDTH = 19  # digits of the largest BIGINT
PARTS = ("deployment", "replicasets", "pods")
LENGTH = WIDTH * (1 + len(PARTS))


def _whole(value) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def key(report: dict) -> str:
    """The report's place in its object's order (compare with ``<``/``>``)."""
    head = f"{_whole(report.get('resource_version')):0{WIDTH}d}"
    versions = report.get("versions")
    if not isinstance(versions, dict) or not versions:
        return head
    return head + "".join(f"{_whole(versions.get(part)):0{WIDTH}d}" for part in PARTS)


def of_version(resource_version) -> str:
    """The key of a bare resourceVersion (rows stored before reports carried ``versions``)."""
    return key({"resource_version": resource_version})
