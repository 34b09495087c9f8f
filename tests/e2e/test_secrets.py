"""No upstream key ever leaves the Vault, and no Vault key ever reaches the upstream."""

import json

import requests

from tests.e2e.server import flask_cli
from tests.fake_gemini import Reply, Reset, faults

MODEL = "gemini-2.5-flash"
PROMPT = {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def test_failure_paths_never_reveal_an_upstream_key(own_stack):
    stack = own_stack(key_count=3, VAULT_UPSTREAM_READ_TIMEOUT="1", VAULT_KEY_MAX_FAILURES="1")
    first, second, third = stack.upstream_keys
    fake = stack.fake
    seen: list[str] = []

    def call(path, body=PROMPT, bearer=False, **params):
        auth = {"Authorization": f"Bearer {stack.vault_key}"} if bearer else {"x-goog-api-key": stack.vault_key}
        response = requests.post(stack.base_url + path, json=body, headers=auth, params=params, timeout=30)
        seen.append(json.dumps(dict(response.headers)) + response.text)
        return response

    generate = f"/v1beta/models/{MODEL}:generateContent"
    stream = f"/v1beta/models/{MODEL}:streamGenerateContent"
    fake.enqueue(faults.quota_exceeded("1s"))
    call("/v1beta/models/gemini-2.5-pro:generateContent")
    for fault in (faults.internal(), faults.bad_gateway_html(), faults.empty_ok(),
                  faults.unavailable(), faults.deadline_exceeded()):
        fake.enqueue(fault)
        call(generate)
    fake.enqueue(Reset())
    call(generate)
    fake.hang(key=first)
    call(generate)
    fake.release_all()
    fake.enqueue(Reply(text="a b c d", die_after=1))
    call(stream, alt="sse")
    fake.enqueue(Reply(text="a b c d", die_after=1))
    call("/v1/chat/completions", CHAT | {"stream": True}, bearer=True)
    fake.enqueue(faults.key_leaked(), key=second)
    fake.enqueue(faults.location_not_supported(), key=third)
    for _ in range(3):  # round-robin reaches every key
        call(generate)
    fake.remove_key(first)
    call(generate)
    call("/v1/chat/completions", CHAT, bearer=True)
    fake.enqueue(faults.quota_exceeded("30s"), times=None)
    call(generate)

    admin = requests.get(f"{stack.base_url}/admin/api/upstream-keys", headers=stack.admin(), timeout=10)
    assert "disabled" in {key["state"] for key in admin.json()["upstream_keys"]}, admin.text
    page = requests.get(f"{stack.base_url}/admin/nothing", headers=stack.admin(), timeout=10)
    listing = flask_cli(stack.environ, "upstream", "list")
    stack.server.stop()
    everything = "\n".join(seen + [admin.text, page.text, listing.stdout, listing.stderr, stack.server.log()])
    assert "disabled" in everything and "429" in stack.server.log()
    for secret in stack.upstream_keys:
        assert secret not in everything
        assert secret[4:-4] not in everything

    for upstream_call in fake.calls:
        carried = json.dumps(upstream_call.headers) + upstream_call.query_string + upstream_call.raw_body.decode()
        assert stack.vault_key not in carried
