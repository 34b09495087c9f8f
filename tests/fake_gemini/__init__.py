"""A fake Gemini upstream for tests: a real loopback server speaking Gemini's wire format.

    with FakeGemini() as fake:
        fake.enqueue(faults.quota_exceeded("37s"), key="AIza-first")
        ...  # point an SDK or the gateway at fake.base_url

See `server.FakeGemini` for keys, scripting, the request log, and the Files and
cachedContents APIs it speaks (uploads are tracked in `fake.uploads`, see `uploads.Upload`).
"""

from tests.fake_gemini import faults
from tests.fake_gemini.faults import Fault
from tests.fake_gemini.log import RecordedRequest
from tests.fake_gemini.payloads import count_words
from tests.fake_gemini.script import Gate, Hang, Redirect, Reply, Reset
from tests.fake_gemini.server import FakeGemini
from tests.fake_gemini.uploads import Upload

__all__ = ["FakeGemini", "Fault", "Gate", "Hang", "RecordedRequest", "Redirect", "Reply",
           "Reset", "Upload", "count_words", "faults"]
