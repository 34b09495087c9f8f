"""A fake Gemini upstream for tests: a real loopback server speaking Gemini's wire format.

    with FakeGemini() as fake:
        fake.enqueue(faults.quota_exceeded("37s"), key="AIza-first")
        ...  # point an SDK or the gateway at fake.base_url

See `server.FakeGemini` for keys, scripting and the request log.
"""

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault
from tests.fake_gemini.log import RecordedRequest
from tests.fake_gemini.payloads import count_words
from tests.fake_gemini.script import Gate, Hang, Redirect, Reply, Reset
from tests.fake_gemini.server import FakeGemini

__all__ = ["FakeGemini", "Fault", "Gate", "Hang", "RecordedRequest", "Redirect", "Reply",
           "Reset", "count_words", "faults"]
