"""Image generation (`POST /v1/images/generations`): the body Google gets, and the images an answer holds.

Gemini's OpenAI-compatible images endpoint (`/v1beta/openai/images/generations`, Imagen)
takes `model`, `prompt`, `n`, `size` and `response_format`, and answers
`{"created": …, "data": [{"b64_json": …}, …]}`. The Vault rebuilds the body from those
fields alone, each checked, so Google reads exactly what was billed; any other field
(`quality`, `style`, `user`, `background` …) is refused with a 400 naming it and nothing is
sent. Images are never streamed: `"stream": false` is accepted and dropped, `true` refused.

An answer is billed per image it holds. A 200 can be many megabytes of base64 (up to four
images), so the images are counted on the bytes as they came, without decoding them into a
second copy: inside a JSON string every `"` is escaped, so `"b64_json": "` can only be one
image's key and value.
"""

import re

from vault.errors import BadRequest
from vault.inbound import encode_json
from vault.proxy.routes import checked_model

FIELDS = ("model", "prompt", "n", "size", "response_format")
MAX_IMAGES = 4  # Imagen makes one to four images a call
# Imagen reads a few hundred tokens of prompt; this only keeps absurd prompts off the wire.
MAX_PROMPT_CHARS = 8_000
SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")
RESPONSE_FORMATS = ("b64_json",)  # Google returns the images themselves; it hosts no URLs
IMAGE_DATA = re.compile(rb'"b64_json"\s*:\s*"')
IMAGE_URL = re.compile(rb'"url"\s*:\s*"')


def image_body(payload: dict) -> tuple[bytes, str, int]:
    """(body, model, n) of an images request: the allow-listed fields, checked and re-serialised.

    `BadRequest` names the first field that is unknown or not valid; nothing reaches Google then.
    """
    unknown = sorted(name for name in payload if name not in FIELDS and name != "stream")
    if unknown:
        raise BadRequest(f"'{unknown[0][:64]}' is not accepted for image generation; the Vault sends "
                         f"{', '.join(FIELDS)} (Gemini's images endpoint takes no other field).")
    stream = payload.get("stream")
    if stream is not None and stream is not False:  # JSON false or null only (`0 == False` in Python)
        raise BadRequest("Images are not streamed; leave 'stream' out or set it to false.")
    model = checked_model(required_text(payload, "model").removeprefix("models/"))
    prompt = required_text(payload, "prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"'prompt' is longer than {MAX_PROMPT_CHARS} characters.")
    body = {"model": model, "prompt": prompt} | optional_fields(payload)
    return encode_json(body, False), model, body.get("n", 1)


def required_text(payload: dict, name: str) -> str:
    """A required, non-blank string field."""
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' is required and must be a non-empty string.")
    return value


def optional_fields(payload: dict) -> dict:
    """`n`, `size` and `response_format` as sent, each checked; absent or null ones are left out."""
    kept = {name: payload[name] for name in ("n", "size", "response_format") if payload.get(name) is not None}
    n = kept.get("n")
    if "n" in kept and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES):
        raise BadRequest(f"'n' must be a whole number from 1 to {MAX_IMAGES} (Imagen's limit per call).")
    if "size" in kept and not (isinstance(kept["size"], str) and SIZE.fullmatch(kept["size"])):
        raise BadRequest("'size' must be WIDTHxHEIGHT in pixels, e.g. '1024x1024'.")
    if "response_format" in kept and kept["response_format"] not in RESPONSE_FORMATS:
        raise BadRequest("'response_format' must be 'b64_json': Gemini returns the images themselves, not URLs.")
    return kept


def images_returned(body: bytes, asked: int) -> int:
    """How many images a 200 answer holds, never more than the `asked` ones its hold covers."""
    found = sum(1 for _ in IMAGE_DATA.finditer(body)) or sum(1 for _ in IMAGE_URL.finditer(body))
    return min(found, asked)
