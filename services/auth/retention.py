"""What the auth service trims after ``RETENTION_DAYS`` (shared/retention.py): audit entries,
login sessions that ended (expired or logged out) that long ago — personal tokens stay
listed for their owners — and the event ids kept for deduplication."""
from shared.retention import RetentionEntrypoints, Rule, delete_older, processed_events


class Retention(RetentionEntrypoints):
    retention_rules = (
        Rule("audit", "auth_audit", delete_older("auth_audit", "created_at")),
        Rule("sessions", "auth_tokens.expired", delete_older("auth_tokens", "expires_at", "kind = 'session'")),
        Rule("sessions", "auth_tokens.revoked", delete_older("auth_tokens", "revoked_at", "kind = 'session'")),
        processed_events("auth"))
