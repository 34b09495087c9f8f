"""Everything between the Vault and the Gemini API: the client, the failover loop, the stream relay.

What an answer means for a key lives in `vault.pool`.
"""
