"""`/readyz`: ready while some key can serve some model, with availability per model in the body."""

from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator

from vault import pool
from vault.clock import utcnow
from vault.extensions import db
from vault.models import UpstreamKeyState
from vault.pool.health import upsert_cooldown
from vault.runtime import runtime

PRO, FLASH = "gemini-2.5-pro", "gemini-2.5-flash"


@pytest.fixture
def keys(app):
    added = pool.add_upstream_keys(db.session, ["AIzaSy-ready-key-0001", "AIzaSy-ready-key-0002"],
                                   runtime().secret_box)
    db.session.commit()
    return [result.key for result in added]


@pytest.fixture
def readiness(client):
    """`readiness()`: the status code and body, checked against the OpenAPI document."""
    document = client.get("/openapi.json").get_json()

    def read() -> tuple[int, dict]:
        answer = client.get("/readyz")
        schema = {"$ref": "#/components/schemas/Readiness", "components": document["components"]}
        Draft202012Validator(schema).validate(answer.get_json())
        return answer.status_code, answer.get_json()

    return read


def cool(key, model: str, seconds: float = 60) -> None:
    upsert_cooldown(db.session, key.id, model, utcnow() + timedelta(seconds=seconds), "429")
    db.session.commit()


def test_every_key_cooling_for_one_model_is_still_ready(keys, readiness):
    for key in keys:
        cool(key, PRO)
    cool(keys[0], FLASH)
    status, body = readiness()
    assert status == 200 and body["status"] == "ready" and body["upstream_keys"] == "up"
    assert body["models"] == {"*": "available", FLASH: "available", PRO: "cooling"}
    assert body["keys"] == {"active": 0, "cooling": 2, "disabled": 0}


def test_every_key_resting_after_its_breaker_is_not_ready(keys, readiness):
    for key in keys:
        cool(key, "*")
    cool(keys[1], PRO)
    status, body = readiness()
    assert status == 503 and body["upstream_keys"] == "down"
    assert body["models"] == {"*": "cooling", PRO: "cooling"}


def test_disabled_keys_serve_nothing_until_their_time_is_up(keys, readiness):
    for key in keys:
        pool.set_upstream_key_state(db.session, key, active=False)
    db.session.commit()
    status, body = readiness()
    assert status == 503 and body["models"] == {"*": "unavailable"}
    assert body["keys"] == {"active": 0, "cooling": 0, "disabled": 2}
    keys[0].disabled_until = utcnow() - timedelta(seconds=1)  # a timed disable that has run out
    db.session.commit()
    assert readiness()[0] == 200


def test_ended_cooldowns_and_deleted_keys_do_not_count(keys, readiness):
    cool(keys[0], PRO, seconds=-1)
    pool.delete_upstream_key(db.session, keys[1])
    db.session.commit()
    assert keys[1].state is UpstreamKeyState.DELETED
    status, body = readiness()
    assert status == 200 and body["models"] == {"*": "available"} and body["keys"]["active"] == 1
