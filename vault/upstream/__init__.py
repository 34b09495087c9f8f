"""Everything between the Vault and the Gemini API: the client, key health, failover, relay."""
