"""Files and cached contents: which user owns each, which upstream key holds it, what it costs.

Plain code over a SQLAlchemy session (no Flask request): `references` finds what a request
body names, `registry` records and looks up what users own, `uploads` keeps the resumable
uploads the Vault relays, `storage` prices a cache's storage.
"""
