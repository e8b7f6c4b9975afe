"""Message shapes of the notify service (RPC payloads and events)."""
