"""Makes the fake's fixtures available to its own tests: `fake_gemini`, two keys, the SDK versions."""

from tests.fake_gemini.fixtures import api_version, fake_gemini, owner, stranger  # noqa: F401 - used by name
