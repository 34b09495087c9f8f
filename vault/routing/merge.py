"""Virtual models' request defaults: a native request fragment, merged under what the caller sent.

The merge is a deep "setdefault": a field the caller set is never overridden, whichever
spelling they used (`generationConfig` / `generation_config`); objects merge field by field,
anything else (a list such as `tools`, a number) is the caller's as a whole.

OpenAI-compatible calls get the part of the defaults Gemini's OpenAI endpoint can take
(ai.google.dev/gemini-api/docs/openai): the sampling fields as OpenAI's own parameters, and
`thinkingConfig` as `extra_body.google.thinking_config` — on the wire a top-level
`"extra_body": {"google": {...}}` object, which is what the openai SDK sends for
`extra_body={"extra_body": {"google": ...}}`. Google documents `reasoning_effort` and a thinking
config as exclusive, so a caller's `reasoning_effort` keeps the defaults' thinking config out.
Everything else (`tools`, `toolConfig`, `safetySettings`, `systemInstruction`, other
generation fields) has no chat-completions form there and applies to native calls only.
"""

import re

# Top-level fields a virtual model's defaults may set (camelCase, as Google documents them).
DEFAULT_FIELDS = ("generationConfig", "tools", "toolConfig", "safetySettings", "systemInstruction")
# generationConfig field -> the OpenAI chat-completions parameter Gemini maps it from.
OPENAI_PARAMETERS = {
    "temperature": "temperature", "topP": "top_p", "maxOutputTokens": "max_tokens", "stopSequences": "stop",
    "seed": "seed", "presencePenalty": "presence_penalty", "frequencyPenalty": "frequency_penalty",
    "candidateCount": "n",
}
OUTPUT_CAPS = ("max_tokens", "max_completion_tokens")
CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    return CAMEL_HUMP.sub(r"_\1", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def spellings(name: str) -> tuple[str, ...]:
    """The names a protobuf JSON field may be sent under: as given, snake_case, lowerCamelCase."""
    return tuple(dict.fromkeys((name, snake(name), camel(name))))


def merged(explicit: dict, defaults: dict) -> dict:
    """`explicit` with every field of `defaults` it does not set (in any spelling), objects merged deeply."""
    out = dict(explicit)
    for name, value in defaults.items():
        present = next((spelling for spelling in spellings(name) if spelling in explicit), None)
        if present is None:
            out[name] = value
        elif isinstance(explicit[present], dict) and isinstance(value, dict):
            out[present] = merged(explicit[present], value)
    return out


def thinking_config(native: dict) -> dict:
    """A native `thinkingConfig` in the snake_case of `extra_body.google.thinking_config`."""
    return {snake(name): value for name, value in native.items()}


def openai_defaults(defaults: dict) -> dict:
    """The part of native `defaults` an OpenAI-compatible chat body can carry, in that body's shape."""
    config = defaults.get("generationConfig") or {}
    fragment = {OPENAI_PARAMETERS[name]: value for name, value in config.items() if name in OPENAI_PARAMETERS}
    thinking = config.get("thinkingConfig")
    if isinstance(thinking, dict) and thinking:
        fragment["extra_body"] = {"google": {"thinking_config": thinking_config(thinking)}}
    return fragment


def native_only(defaults: dict) -> list[str]:
    """The fields of `defaults` that OpenAI-compatible calls do not get (dotted paths)."""
    config = defaults.get("generationConfig") or {}
    skipped = [f"generationConfig.{name}" for name in config
               if name not in OPENAI_PARAMETERS and name != "thinkingConfig"]
    return [name for name in defaults if name != "generationConfig"] + skipped


def with_native_defaults(payload: dict, defaults: dict) -> dict:
    """A native generateContent body with a virtual model's defaults under the caller's fields."""
    return merged(payload, defaults)


def with_openai_defaults(payload: dict, defaults: dict) -> dict:
    """An OpenAI-compatible chat body with the defaults it can carry under the caller's fields."""
    fragment = openai_defaults(defaults)
    if any(cap in payload for cap in OUTPUT_CAPS):
        fragment.pop("max_tokens", None)
    if "reasoning_effort" in payload:  # exclusive with a thinking config: the caller's choice stands
        fragment.pop("extra_body", None)
    return merged(payload, fragment)
