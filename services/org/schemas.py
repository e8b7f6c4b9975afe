"""Message shapes of the org service (RPC payloads and events)."""
