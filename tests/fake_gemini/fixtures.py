"""pytest fixtures for the fake Gemini upstream.

The project's conftest imports `fake_gemini`; the fake's own tests also use `owner`,
`stranger` and `api_version`.
"""

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


@pytest.fixture
def owner(fake_gemini: FakeGemini) -> str:
    """A key (a project) that uploads files and creates caches."""
    return fake_gemini.new_key()


@pytest.fixture
def stranger(fake_gemini: FakeGemini) -> str:
    """Another key, of another project."""
    return fake_gemini.new_key()


@pytest.fixture(params=[None, "v1beta"], ids=["default-v1", "v1beta"])
def api_version(request) -> str | None:
    """google-genai's default version (v1 in 3.x, uploading to /upload/v1/files) and v1beta."""
    return request.param
