"""Password hashing runs in gevent's thread pool, so a burst of logins cannot stall streams."""


from tests.hub_probe import measure_hub

SETUP = """
from vault.security import PasswordHashing

hasher = PasswordHashing(time_cost=2, memory_kib=19456, parallelism=1)
hash_call = hasher.hash if sys.argv[1] == "off-hub" else hasher._hasher.hash
"""
WORK = 'gevent.joinall([gevent.spawn(hash_call, f"password-{n}") for n in range(6)])'


def run_probe(mode: str) -> dict:
    return measure_hub(SETUP, WORK, mode, timeout=60)


def test_hashing_off_the_hub_keeps_other_greenlets_running():
    measured = run_probe("off-hub")
    assert measured["max_gap"] < measured["elapsed"] / 3, measured


def test_the_probe_can_tell_a_blocked_hub():
    measured = run_probe("inline")
    assert measured["max_gap"] >= measured["elapsed"] / 3, measured
