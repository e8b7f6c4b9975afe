"""``mae``: MAE's command line. It talks only to the public REST API (/api/v1)."""
