"""What the cluster service trims after ``RETENTION_DAYS`` (shared/retention.py): operator
reports not renewed since then (objects long gone: a live object is reported again on
every change and relist) once announced, and the event ids kept for deduplication."""
from shared.retention import RetentionEntrypoints, Rule, delete_older, processed_events


class Retention(RetentionEntrypoints):
    retention_rules = (
        Rule("reports", "cluster_reports", delete_older("cluster_reports", "received_at", "published = 1")),
        processed_events("cluster"))
