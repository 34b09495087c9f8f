"""Calls that name files or caches: only the caller's own, sent with the key that holds them, nothing else.

Every refusal is checked for what did not happen: no call reached the fake upstream, no
balance moved, no key's health changed.
"""

from datetime import timedelta

import pytest

from tests.fake_gemini import faults
from vault import pool
from vault.clock import utcnow
from vault.extensions import db
from vault.models import StoredResource, UpstreamKey, User
from vault.models.stored_resource import CACHE, FILE
from vault.runtime import runtime

GENERATE = "/{v}/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
COUNT = "/v1beta/models/gemini-2.5-flash:countTokens"
CHAT = "/v1beta/openai/chat/completions"
FILE_URI = "https://generativelanguage.googleapis.com/v1beta/{name}"


@pytest.fixture
def pooled(app, proxied_key, fake_gemini):
    """Three upstream keys in the pool (the fake knows each as its own project); returns their secrets by id."""
    del proxied_key  # requested for its setup: the app in front of the fake, with the first key
    for _ in range(2):
        pool.add_upstream_key(db.session, fake_gemini.new_key(), runtime().secret_box)
    db.session.commit()
    runtime().health.refresh(force=True)
    box = runtime().secret_box
    return {key.id: box.decrypt(key.secret_encrypted) for key in db.session.scalars(db.select(UpstreamKey))}


def own(fake, user_id: int, key_id: int, secret: str, kind: str = FILE, expires_in: float = 3600) -> str:
    """A file (or cache) made upstream with `secret` and recorded as `user_id`'s; returns its name."""
    name = fake.add_file(secret) if kind == FILE else fake.add_cached_content(secret)
    db.session.add(StoredResource(kind=kind, name=name, user_id=user_id, upstream_key_id=key_id,
                                  resource={"name": name}, expires_at=utcnow() + timedelta(seconds=expires_in)))
    db.session.commit()
    return name


def file_body(name: str, spelling: str = "name") -> dict:
    uri = name if spelling == "name" else FILE_URI.format(name=name)
    return {"contents": [{"parts": [{"text": "describe"}, {"fileData": {"fileUri": uri, "mimeType": "text/plain"}}]}]}


def balances() -> list:
    db.session.expire_all()
    return sorted(db.session.execute(db.select(User.id, User.balance_nano)).all())


def health() -> list:
    db.session.expire_all()
    return sorted(db.session.execute(db.select(UpstreamKey.id, UpstreamKey.state, UpstreamKey.failure_count)).all())


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("spelling", ["name", "uri"])
def test_a_call_naming_an_own_file_always_goes_to_its_key(client, proxied_key, pooled, fake_gemini, version,
                                                          spelling):
    key = proxied_key("100.00")
    owner_id, secret = list(pooled.items())[1]
    name = own(fake_gemini, key.record.user_id, owner_id, secret)
    for _ in range(4):  # round-robin would have moved on to the other keys
        response = client.post(GENERATE.format(v=version), json=file_body(name, spelling),
                               headers={"x-goog-api-key": key.plaintext})
        assert response.status_code == 200, response.get_json()
    assert [call.key for call in fake_gemini.calls] == [secret] * 4


def test_streams_count_tokens_and_caches_are_pinned_too(client, proxied_key, pooled, fake_gemini):
    key = proxied_key("100.00")
    owner_id, secret = list(pooled.items())[2]
    file_name = own(fake_gemini, key.record.user_id, owner_id, secret)
    cache = own(fake_gemini, key.record.user_id, owner_id, secret, kind=CACHE)
    headers = {"x-goog-api-key": key.plaintext}
    assert client.post(STREAM, json=file_body(file_name), headers=headers).status_code == 200
    assert client.post(COUNT, json={"generateContentRequest": {"model": "models/gemini-2.5-flash",
                                                               **file_body(file_name)}},
                       headers=headers).status_code == 200
    assert client.post(GENERATE.format(v="v1beta"), json={"cachedContent": cache, **file_body(file_name)},
                       headers=headers).status_code == 200
    chat = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"google": {"cached_content": cache}}}
    assert client.post(CHAT, json=chat, headers={"Authorization": f"Bearer {key.plaintext}"}).status_code == 200
    assert {call.key for call in fake_gemini.calls} == {secret} and len(fake_gemini.calls) == 4


def attempts(client, key, body, dialect: str):
    if dialect == "openai":
        chat = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": body}}]}]}
        return client.post(CHAT, json=chat, headers={"Authorization": f"Bearer {key.plaintext}"})
    return client.post(GENERATE.format(v="v1beta"), json=file_body(body), headers={"x-goog-api-key": key.plaintext})


@pytest.mark.parametrize("dialect", ["google", "openai"])
@pytest.mark.parametrize("case", ["other_user", "never_made", "deleted", "expired", "not_recorded_upstream_file"])
def test_a_file_the_caller_does_not_own_is_not_found(client, proxied_key, pooled, fake_gemini, db_snapshot, case,
                                                     dialect):
    mine, theirs = proxied_key("100.00"), proxied_key("100.00")
    owner_id, secret = next(iter(pooled.items()))
    if case == "other_user":
        name = own(fake_gemini, theirs.record.user_id, owner_id, secret)
    elif case == "never_made":
        name = "files/doesnotexist1"
    elif case == "deleted":
        name = own(fake_gemini, mine.record.user_id, owner_id, secret)
        db.session.execute(db.update(StoredResource).values(deleted_at=utcnow()))
        db.session.commit()
    elif case == "expired":
        name = own(fake_gemini, mine.record.user_id, owner_id, secret, expires_in=-1)
    else:  # made upstream (say by the operator) but never through the Vault: no user owns it
        name = fake_gemini.add_file(secret)
    before, pool_before = balances(), health()
    response = attempts(client, mine, FILE_URI.format(name=name), dialect)
    assert response.status_code == 404
    error = response.get_json()["error"]
    if dialect == "google":
        assert error["status"] == "NOT_FOUND" and name in error["message"]
    else:
        assert error["type"] == "invalid_request_error" and error["code"] == "not_found"
    assert fake_gemini.calls == [] and balances() == before and health() == pool_before


def test_not_found_reads_the_same_for_another_users_file_and_a_made_up_one(client, proxied_key, pooled,
                                                                            fake_gemini):
    mine, theirs = proxied_key("100.00"), proxied_key("100.00")
    owner_id, secret = next(iter(pooled.items()))
    real = own(fake_gemini, theirs.record.user_id, owner_id, secret)
    made_up = "files/" + "z" * len(real.removeprefix("files/"))
    answers = [attempts(client, mine, name, "google") for name in (real, made_up)]
    bodies = [a.get_json()["error"] | {"message": a.get_json()["error"]["message"].replace(n, "N")}
              for a, n in zip(answers, (real, made_up), strict=True)]
    assert bodies[0] == bodies[1] and answers[0].status_code == answers[1].status_code == 404


def test_files_of_two_keys_cannot_be_used_together(client, proxied_key, pooled, fake_gemini):
    key = proxied_key("100.00")
    (first_id, first), (second_id, second) = list(pooled.items())[:2]
    user_id = key.record.user_id
    a, b = own(fake_gemini, user_id, first_id, first), own(fake_gemini, user_id, second_id, second)
    body = file_body(a)
    body["contents"][0]["parts"].append({"fileData": {"fileUri": b}})
    response = client.post(GENERATE.format(v="v1beta"), json=body, headers={"x-goog-api-key": key.plaintext})
    assert response.status_code == 400 and "different upstream projects" in response.get_json()["error"]["message"]
    assert fake_gemini.calls == []


def test_a_cooling_owner_key_gives_429_with_its_retry_after_and_no_other_key_is_tried(client, proxied_key, pooled,
                                                                                     fake_gemini):
    key = proxied_key("100.00")
    owner_id, secret = list(pooled.items())[1]
    name = own(fake_gemini, key.record.user_id, owner_id, secret)
    fake_gemini.enqueue(faults.quota_exceeded("42s"), key=secret)
    first = client.post(GENERATE.format(v="v1beta"), json=file_body(name), headers={"x-goog-api-key": key.plaintext})
    assert first.status_code == 429 and 40 <= int(first.headers["Retry-After"]) <= 42
    second = client.post(GENERATE.format(v="v1beta"), json=file_body(name), headers={"x-goog-api-key": key.plaintext})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    assert [call.key for call in fake_gemini.calls] == [secret]  # the second never left the Vault
    plain = client.post(GENERATE.format(v="v1beta"), json={"contents": [{"parts": [{"text": "hi"}]}]},
                        headers={"x-goog-api-key": key.plaintext})
    assert plain.status_code == 200 and fake_gemini.calls[-1].key != secret  # other calls still flow


@pytest.mark.parametrize("how", ["disabled", "deleted"])
def test_an_owner_key_out_of_the_pool_gives_a_clear_409(client, proxied_key, pooled, fake_gemini, how):
    key = proxied_key("100.00")
    owner_id, secret = list(pooled.items())[0]
    name = own(fake_gemini, key.record.user_id, owner_id, secret)
    row = db.session.get(UpstreamKey, owner_id)
    if how == "disabled":
        pool.set_upstream_key_state(db.session, row, active=False, reason="test")
    else:
        pool.delete_upstream_key(db.session, row)
    db.session.commit()
    runtime().health.refresh(force=True)
    response = client.post(GENERATE.format(v="v1beta"), json=file_body(name), headers={"x-goog-api-key": key.plaintext})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["status"] == "FAILED_PRECONDITION" and name in error["message"]
    assert fake_gemini.calls == []


def test_a_duplicate_key_cannot_hide_a_reference_from_the_check(client, proxied_key, pooled, fake_gemini):
    """JSON keeps the last of two equal keys; what Google reads is re-encoded from what was checked."""
    key, victim = proxied_key("100.00"), proxied_key("100.00")
    owner_id, secret = next(iter(pooled.items()))
    theirs = own(fake_gemini, victim.record.user_id, owner_id, secret)
    mine = own(fake_gemini, key.record.user_id, owner_id, secret)
    parts = f'{{"text":"x"}},{{"fileData":{{"fileUri":"{theirs}","fileUri":"{mine}"}}}}'
    raw = f'{{"contents":[{{"parts":[{parts}]}}]}}'.encode()
    response = client.post(GENERATE.format(v="v1beta"), data=raw, content_type="application/json",
                           headers={"x-goog-api-key": key.plaintext})
    assert response.status_code == 200
    [call] = fake_gemini.calls
    assert theirs.encode() not in call.raw_body and mine.encode() in call.raw_body
