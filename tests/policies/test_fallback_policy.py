"""a fallback chain must not serve a key a model its policy forbids.

`serve()` checks the key's (and its owner's) model lists once, against the model called and
what it routes to; when every pool key cools for that model, `forward_with_fallback` re-routes
the call to the next model of the admin's chain (`Meter.retarget`) without checking that model
against the key's `allowed_models` or the owner's `visible_models`.
"""

import pytest

from tests.billing.books import assert_books_balance, records
from tests.fake_gemini import faults
from tests.policies.test_enforcement import CHAT, GENERATE, PROMPT, closed, set_limits, set_policy


@pytest.fixture
def fallback_to_pro(client, make_user, auth_headers, fake_gemini):
    """gemini-2.5-flash falls back to gemini-2.5-pro; every pool key is cooling for flash."""
    admin = auth_headers(make_user(email="root@example.com", is_admin=True))
    saved = client.put("/admin/api/models/gemini-2.5-flash", json={"hidden": False, "fallback": ["gemini-2.5-pro"]},
                       headers=admin)
    assert saved.status_code == 200, saved.get_json()
    fake_gemini.enqueue(faults.quota_exceeded("30s", model="gemini-2.5-flash"), model="gemini-2.5-flash", times=None)


def served_models(fake_gemini) -> list[str]:
    return [call.path for call in fake_gemini.calls if "gemini-2.5-pro" in call.path
            or (call.json or {}).get("model") == "gemini-2.5-pro"]


@pytest.mark.parametrize("dialect", ["google", "openai"])
@pytest.mark.parametrize("rule", ["allowed_models", "visible_models"])
def test_a_fallback_never_serves_a_model_the_key_may_not_use(client, key, fake_gemini, fallback_to_pro, dialect,
                                                             rule):
    if rule == "allowed_models":
        set_policy(key, allowed_models=["gemini-2.5-flash"])
    else:
        set_limits(key, visible_models=["gemini-2.5-flash"])
    if dialect == "google":
        response = closed(client.post(GENERATE, json=PROMPT, headers={"x-goog-api-key": key.plaintext}))
    else:
        response = closed(client.post(CHAT, json={"model": "gemini-2.5-flash",
                                                  "messages": [{"role": "user", "content": "hi"}]},
                                      headers={"Authorization": f"Bearer {key.plaintext}"}))
    served_by_pro = [record for record in records() if record.model == "gemini-2.5-pro"]
    assert served_models(fake_gemini) == [], (
        f"{rule} allows only gemini-2.5-flash, yet the fallback sent the call to gemini-2.5-pro "
        f"(status {response.status_code}, records {[(r.model, r.fallback_from) for r in served_by_pro]})")
    assert response.status_code in (403, 429)
    assert not served_by_pro
    assert_books_balance(key.record.user_id)
