"""Class 8 -- metrics: what a client makes up (actions, paths, models) never becomes a metric series.

`/metrics` is read from the private `limited` Vault, which has one worker, so two reads see
the same process. A warm-up creates the series the attempts legitimately touch (an unknown
model on each endpoint is one series per endpoint and status); after it, 50 random attempts
must not add a single line.
"""

import random

import requests

from tests.e2e.hostile.probe import MODEL, assert_dialect, auth_for, send

SEED = 20261127


def exposition(stack) -> list[str]:
    response = requests.get(f"{stack.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text.splitlines()


def series(lines: list[str]) -> set[str]:
    """Each sample's name and labels (the value may change, the set may not)."""
    return {line.rsplit(" ", 1)[0] for line in lines if line and not line.startswith("#")}


def made_up(rng: random.Random, n: int, stack):
    """(method, target, dialect, body, statuses) of one random attempt."""
    word = f"rand{rng.randrange(10**6)}"
    prompt = {"contents": [{"parts": [{"text": "hi"}]}]}
    chat = {"model": f"gemini-{word}", "messages": [{"role": "user", "content": "hi"}]}
    choices = [
        ("POST", f"/v1beta/models/{MODEL}:{word}", "google", prompt, (404,)),
        ("POST", f"/v1/models/{MODEL}:{word}", "google", prompt, (404,)),
        ("GET", f"/v1beta/{word}/{word}", "google", None, (404,)),
        ("POST", f"/v1beta/openai/{word}", "openai", chat, (404,)),
        ("GET", f"/v1/{word}", "google", None, (404,)),
        ("POST", f"/v1beta/models/gemini-{word}:generateContent", "google", prompt, (404,)),
        ("GET", f"/v1/models/gemini-{word}", "google", None, (404,)),
        ("POST", "/v1/chat/completions", "openai", chat, (404,)),
        ("PUT", f"/v1beta/models/{word}:{word}", "google", prompt, (400, 404, 405)),
    ]
    return choices[n % len(choices)] if n < len(choices) else rng.choice(choices)


def test_made_up_actions_paths_and_models_add_no_metric_series(limited):
    rng = random.Random(SEED)
    for n in range(9):  # warm-up: one of each kind, so every legitimate series exists
        method, target, dialect, body, statuses = made_up(rng, n, limited)
        assert_dialect(send(limited, method, target, auth_for(limited, dialect, body is not None), body),
                       statuses, dialect)
    before = exposition(limited)
    for n in range(50):
        method, target, dialect, body, statuses = made_up(rng, 100 + n, limited)
        answer = send(limited, method, target, auth_for(limited, dialect, body is not None), body)
        assert_dialect(answer, statuses, dialect)
    after = exposition(limited)
    assert series(after) == series(before), sorted(series(after) - series(before))[:10]
    assert len(after) == len(before)
    assert "rand" not in "\n".join(after)
