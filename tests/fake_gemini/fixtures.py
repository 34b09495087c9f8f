"""pytest fixtures for the fake Gemini upstream; the project's conftest imports these."""

import pytest

from tests.fake_gemini.server import FakeGemini


@pytest.fixture
def fake_gemini():
    """A started `FakeGemini`, stopped (connections closed, held calls released) after the test."""
    with FakeGemini() as fake:
        yield fake
