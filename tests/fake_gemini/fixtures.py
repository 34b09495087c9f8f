"""pytest fixtures for the fake Gemini upstream; the project's conftest imports these."""

import pytest

from tests.fake_gemini.server import FakeGemini


@pytest.fixture
def fake_gemini():
    """A started `FakeGemini`, stopped (connections closed, held calls released) after the test.

    Teardown fails if the fake itself crashed while answering, so a fake bug never passes
    for a gateway bug.
    """
    with FakeGemini() as fake:
        yield fake
    assert not fake.server_errors, "the fake crashed:\n" + "\n".join(fake.server_errors)
