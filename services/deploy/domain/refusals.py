"""What the cluster's refusals mean, in words a person can act on.

The status machine (``status``) decides that a target failed or waits; these say
why, with the cluster's own message alongside for whoever needs the detail.
"""
from __future__ import annotations

import hashlib


def refused_reason(error: dict) -> str:
    """What the API server (or the way to it) said, in words a person can act on."""
    reason = (error or {}).get("reason") or "Unknown"
    message = (error or {}).get("message") or ""
    if "exceeded quota" in message.lower():
        return f"Quota exceeded: the namespace's resource quota does not allow this ({message})"
    if reason == "Invalid" and "field is immutable" in message:
        return ("The cluster does not allow this change to an existing object (a field it cannot change, "
                f"such as a Deployment's selector): remove the version from the cluster and deploy it "
                f"again, or keep that field as it was ({message})")
    if reason == "Invalid":
        return f"The cluster's API server refused the manifest: {message}"
    if reason == "Forbidden":
        return f"The cluster's API server forbade the change: {message}"
    if reason == "NotManaged":
        return f"An object of the same name exists on the cluster and is not MAE's: {message}"
    if reason in ("Unreachable", "Timeout"):
        return f"The cluster could not be reached ({reason.lower()}): {message}"
    if reason == "SecretEnvUnavailable":  # MAE's own refusal (shared/secret_delivery.py), not the cluster's
        return f"MAE could not deliver the version's secret_env: {message}"
    if reason == "Unauthorized":
        return f"The cluster rejected MAE's credentials; an admin must update the cluster's token ({message})"
    return f"The cluster's API server refused the change ({reason}): {message}"


def refusal(report: dict) -> str | None:
    """The cluster's words if it refuses to create this Deployment's pods: the
    ``ReplicaFailure`` condition the Deployment controller copies from its ReplicaSet
    (reason ``FailedCreate``), or failing that a ``FailedCreate`` event that says why."""
    for condition in report.get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return (condition.get("message") or condition.get("reason") or "FailedCreate")[:2000]
    for event in reversed(report.get("events") or []):
        if event.get("reason") == "FailedCreate" and event.get("message"):
            return str(event["message"])[:2000]
    return None


def pods_refused_reason(message: str) -> str:
    """A refusal in words a person can act on; the cluster's own message goes alongside."""
    text = message or ""
    low = text.lower()
    if "violates podsecurity" in low:
        level = text.split('violates PodSecurity "', 1)[-1].split('"', 1)[0] if 'PodSecurity "' in text else ""
        marker = f'PodSecurity "{level}": '
        rules = text.split(marker, 1)[1] if level and marker in text else ""
        return (f"The namespace's Pod Security level{f' ({level})' if level else ''} forbids these pods"
                + (f": {rules}" if rules else "") + "; change the template or the namespace's level")
    if "exceeded quota" in low:
        return "Quota exceeded: the namespace's resource quota does not allow these pods"
    if "failed quota" in low or "must specify" in low:
        return ("The namespace's resource quota requires CPU and memory requests and limits on every "
                "container: set the version's resources")
    if "status unknown for quota" in low:
        # Kubernetes keeps the first refusal's words in the condition while the failure lasts.
        return "The namespace's resource quota refused the pods (it was not yet counted when they were first refused)"
    if "usage per container" in low or "usage per pod" in low or "limitrange" in low:
        return ("The namespace's LimitRange does not allow these pods' CPU or memory: "
                "change the version's resources")
    if "service account" in low or "serviceaccount" in low:
        return "The pods' service account does not exist in the namespace"
    if "admission webhook" in low or "denied the request" in low or "validatingadmissionpolicy" in low:
        return "An admission policy of the cluster refused these pods"
    return "The cluster refused to create the pods (FailedCreate)"


def warning_lines(record_id: int, cluster: str, report: dict) -> list[tuple[str, str]]:
    """``(line_id, line)`` for each Warning event the operator forwarded with a report
    (docs/contracts.md, ``events``), in plain words — "Warning from the cluster about
    ReplicaSet/web-v1-5d9f: FailedCreate: Error creating: pods … forbidden: …". The id
    is the same for the same event of the same record on the same cluster, so the log
    (unique by line id) shows each distinct event once however often it is reported."""
    out = []
    for event in report.get("events") or []:
        if not isinstance(event, dict) or event.get("type") != "Warning":
            continue
        subject, reason = str(event.get("object") or "?")[:300], str(event.get("reason") or "Warning")[:100]
        message = " ".join(str(event.get("message") or "").split())[:2000]
        digest = hashlib.sha256(f"{record_id}|{cluster}|{subject}|{reason}|{message}".encode()).hexdigest()[:40]
        line = f"Warning from the cluster about {subject}: {reason}: {message}"
        if reason == "FailedCreate":
            line += f" ({pods_refused_reason(message)})"
        out.append((f"kw:{record_id}:{digest}", line))
    return out
