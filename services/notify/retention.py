"""What the notify service trims after ``RETENTION_DAYS`` (shared/retention.py): deliveries
that are over (delivered or failed; pending and sending ones are still work), and the
event ids kept for deduplication."""
from shared.retention import RetentionEntrypoints, Rule, delete_older, processed_events


class Retention(RetentionEntrypoints):
    retention_rules = (
        Rule("deliveries", "notify_deliveries",
             delete_older("notify_deliveries", "created_at", "status IN ('delivered', 'failed')")),
        processed_events("notify"))
