"""Message shapes of the auth service (RPC payloads and events)."""
