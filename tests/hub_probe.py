"""How long gevent's hub is held while some work runs, measured in a fresh, patched interpreter.

A ticker greenlet stamps the time every millisecond; the longest gap between stamps while
the work runs is how long every other greenlet (every open stream) would have waited.
Runs in its own interpreter: monkey-patching the test process would change every test.
"""

import json
import subprocess
import sys
from pathlib import Path

TEMPLATE = r"""
import json, sys, time
from gevent import monkey; monkey.patch_all()
import gevent
report = {{}}
{setup}
stamps, running = [], True

def ticker():
    while running:
        stamps.append(time.perf_counter())
        gevent.sleep(0.001)

tick = gevent.spawn(ticker)
gevent.sleep(0.01)
started = time.perf_counter()
{work}
finished = time.perf_counter()
running = False
tick.join()
window = [t for t in stamps if started <= t <= finished] + [finished]
gaps = [b - a for a, b in zip([started] + window, window)]
print(json.dumps(report | {{"elapsed": finished - started, "max_gap": max(gaps)}}))
"""


def measure_hub(setup: str, work: str, *args: str, timeout: float = 120) -> dict:
    """Run `setup`, then time `work` (Python source; `sys.argv[1:]` are `args`); elapsed and max_gap."""
    script = TEMPLATE.format(setup=setup, work=work)
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=timeout, check=True)
    return json.loads(result.stdout)
