"""Sizing the hold before a request is forwarded: what it may cost at most."""

from vault.billing.prices import Price, cost_nano
from vault.billing.usage import Usage


def requested_output_tokens(payload: object) -> int | None:
    """The output cap a parsed request asks for (`maxOutputTokens`, `max_tokens`, …), if any."""
    if not isinstance(payload, dict):
        return None
    config = payload.get("generationConfig") or payload.get("generation_config") or {}
    candidates = [payload.get("max_completion_tokens"), payload.get("max_tokens")]
    if isinstance(config, dict):
        candidates += [config.get("maxOutputTokens"), config.get("max_output_tokens")]
    return next((value for value in candidates if isinstance(value, int) and value > 0), None)


def estimate_hold(size: int, payload: object, price: Price, default_output: int, floor_nano: int) -> int:
    """What to reserve before forwarding: the request's size (`size` bytes, about four a token)
    as input plus its output cap (or `default_output`), at the model's price, at least `floor_nano`.

    `payload` is the request body already parsed (never parsed again here).
    """
    prompt = size // 4 + 1
    output = requested_output_tokens(payload) or default_output
    estimate = cost_nano(Usage(prompt=prompt, candidates=output), price.rates_for(prompt))
    return max(estimate, floor_nano)
