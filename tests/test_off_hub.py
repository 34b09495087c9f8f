"""Password hashing runs in gevent's thread pool, so a burst of logins cannot stall streams."""

import json
import subprocess
import sys
from pathlib import Path

# Runs in its own interpreter: monkey-patching the test process would change every test.
PROBE = r"""
import json, sys, time
from gevent import monkey; monkey.patch_all()
import gevent
from vault.security import PasswordHashing

hasher = PasswordHashing(time_cost=2, memory_kib=19456, parallelism=1)
hash_call = hasher.hash if sys.argv[1] == "off-hub" else hasher._hasher.hash
stamps, running = [], True

def ticker():
    while running:
        stamps.append(time.perf_counter())
        gevent.sleep(0.001)

tick = gevent.spawn(ticker)
gevent.sleep(0.01)
started = time.perf_counter()
gevent.joinall([gevent.spawn(hash_call, f"password-{n}") for n in range(6)])
finished = time.perf_counter()
running = False
tick.join()
window = [t for t in stamps if started <= t <= finished] + [finished]
gaps = [b - a for a, b in zip([started] + window, window)]
print(json.dumps({"elapsed": finished - started, "max_gap": max(gaps)}))
"""


def run_probe(mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=60, check=True)
    return json.loads(result.stdout)


def test_hashing_off_the_hub_keeps_other_greenlets_running():
    measured = run_probe("off-hub")
    assert measured["max_gap"] < measured["elapsed"] / 3, measured


def test_the_probe_can_tell_a_blocked_hub():
    measured = run_probe("inline")
    assert measured["max_gap"] >= measured["elapsed"] / 3, measured
