"""The notify service's metrics: deliveries by channel type and outcome, and retries."""
from __future__ import annotations

from prometheus_client import Counter

DELIVERIES = Counter(
    "mae_notify_deliveries_total",
    "Notification deliveries that ended, by channel type (feishu, dingtalk, webhook) and outcome "
    "(delivered, failed after every attempt).",
    ["channel_type", "outcome"],
)
DELIVERY_RETRIES = Counter(
    "mae_notify_delivery_retries_total",
    "Attempts of a delivery that failed and were tried again.",
    ["channel_type"],
)
