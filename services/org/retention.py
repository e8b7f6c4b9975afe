"""What the org service trims after ``RETENTION_DAYS`` (shared/retention.py): the event ids
kept for deduplication."""
from shared.retention import RetentionEntrypoints, processed_events


class Retention(RetentionEntrypoints):
    retention_rules = (processed_events("org"),)
