"""Makes the `fake_gemini` fixture available to the fake's own tests."""

from tests.fake_gemini.fixtures import fake_gemini  # noqa: F401 - a fixture is used by name
