"""Benchmarks of the Vault against the fake upstream (`make bench`)."""
