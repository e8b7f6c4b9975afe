"""Message shapes of the server service (RPC payloads and events)."""
