"""The pool at scale: 2,000 keys page in a bounded number of SQL statements; imports, bulk changes and
background checks, through the page and the JSON API."""

import io
import re
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from tests.test_pages import csrf_token, log_in
from vault.clock import isoformat, utcnow
from vault.extensions import db
from vault.jobs import STALE_SECONDS, create_job, key_check
from vault.models import AuditEntry, Job, UpstreamCooldown, UpstreamKey, UpstreamKeyState
from vault.pool import bulk
from vault.pool.health import read_snapshot
from vault.runtime import runtime

# The pool page and one page of the list API, whatever the size of the pool: the session's user,
# the count, the page, its cooldowns, the held counts, the state counts, the latest job (the page);
# plus a few the app itself makes (a form-token prune, SQLite's SAVEPOINT-free BEGIN etc.).
MAX_STATEMENTS = 10


def secret(number: int) -> str:
    return f"AIzaSyPOOL{number:029d}"


@pytest.fixture
def big_pool(app):
    """2,000 pooled keys, every tenth disabled, labelled by team."""
    report = bulk.import_upstream_keys(db.session, [secret(n) for n in range(2000)], runtime().secret_box)
    for number, added in enumerate(report.added):
        added.key.label = f"team-{number % 4}"
        if number % 10 == 0:
            added.key.state = UpstreamKeyState.DISABLED
    db.session.commit()
    runtime().health.refresh(force=True)
    return [added.key.id for added in report.added]


@contextmanager
def counted_statements():
    """The SQL statements run inside the block (a list that fills as they run)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.fixture
def admin_browser(app, admin):
    browser = app.test_client()
    log_in(browser, "root@example.com")
    return browser


def test_the_pool_page_with_2000_keys_runs_a_bounded_number_of_statements(admin_browser, big_pool):
    with counted_statements() as statements:
        page = admin_browser.get("/admin/keys")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert len(re.findall(r'name="ids" value="\d+"', html)) == 50, "a page of 50"
    assert "2,000 keys" in html and "1,800 active · 0 cooling · 200 disabled" in html
    assert len(statements) <= MAX_STATEMENTS, statements
    with counted_statements() as statements:
        last = admin_browser.get("/admin/keys?page=2&per_page=500&q=team-1&state=active")
    assert len(statements) <= MAX_STATEMENTS, statements
    assert len(re.findall(r'name="ids" value="\d+"', last.get_data(as_text=True))) == 0, "500 match: page 2 is empty"
    second = admin_browser.get("/admin/keys?per_page=500&q=TEAM-1&state=disabled").get_data(as_text=True)
    assert len(re.findall(r'name="ids" value="\d+"', second)) == 0, "no team-1 key is disabled"
    third = admin_browser.get("/admin/keys?per_page=500&q=TEAM-2&state=disabled").get_data(as_text=True)
    assert len(re.findall(r'name="ids" value="\d+"', third)) == 100


def test_the_list_api_with_2000_keys_pages_and_filters_in_bounded_statements(client, admin_headers, big_pool):
    with counted_statements() as statements:
        listed = client.get("/admin/api/upstream-keys", headers=admin_headers)
    assert listed.status_code == 200 and len(statements) <= MAX_STATEMENTS, statements
    body = listed.get_json()
    assert (body["total"], body["page"], body["per_page"], len(body["upstream_keys"])) == (2000, 1, 50, 50)
    assert [key["id"] for key in body["upstream_keys"]] == big_pool[:50]
    disabled = client.get("/admin/api/upstream-keys?state=disabled&per_page=500&page=1", headers=admin_headers)
    assert disabled.get_json()["total"] == 200
    assert {key["state"] for key in disabled.get_json()["upstream_keys"]} == {"disabled"}
    found = client.get(f"/admin/api/upstream-keys?q={secret(1234)[-4:]}", headers=admin_headers).get_json()
    assert [key["key"] for key in found["upstream_keys"]] == [f"{secret(1234)[:4]}…{secret(1234)[-4:]}"]
    db.session.execute(db.update(UpstreamKey).where(UpstreamKey.id == big_pool[7]).values(
        last_error="429 RESOURCE_EXHAUSTED per-day quota"))
    db.session.add(UpstreamCooldown(upstream_key_id=big_pool[8], model="gemini-2.5-flash",
                                    until=utcnow() + timedelta(minutes=5), reason="429"))
    db.session.commit()
    by_error = client.get("/admin/api/upstream-keys?q=per-day", headers=admin_headers).get_json()
    assert [key["id"] for key in by_error["upstream_keys"]] == [big_pool[7]]
    cooling = client.get("/admin/api/upstream-keys?state=cooling", headers=admin_headers).get_json()
    assert [key["id"] for key in cooling["upstream_keys"]] == [big_pool[8]]
    percent = client.get("/admin/api/upstream-keys?q=%25", headers=admin_headers).get_json()
    assert percent["total"] == 0, "a % in the search is text, not a wildcard"


def test_importing_2000_keys_with_duplicates_and_invalid_ones(app, client, admin_headers):
    app.config["VAULT_MAX_BODY_BYTES"] = 1_000_000  # the tests' 64 KiB is too small; production allows 20 MiB
    keys = [secret(n) for n in range(1800)] + [secret(n) for n in range(100)] + ["short", "has space!x", "ü" * 12]
    keys += [secret(n) for n in range(1800, 1897)]
    added = client.post("/admin/api/upstream-keys", json={"keys": keys, "label": "batch"}, headers=admin_headers)
    assert added.status_code == 201, added.get_json()
    body = added.get_json()
    assert (body["added"], body["duplicates"], body["invalid_count"]) == (1897, 100, 3)
    assert [item["key"] for item in body["invalid"]][0] == "*****" or "short" not in str(body["invalid"])
    assert all("not an API key" in item["reason"] for item in body["invalid"])
    assert db.session.scalar(select(db.func.count()).select_from(UpstreamKey)) == 1897
    again = client.post("/admin/api/upstream-keys", json={"keys": keys[:10]}, headers=admin_headers).get_json()
    assert (again["added"], again["duplicates"]) == (0, 10)
    assert {key["created"] for key in again["upstream_keys"]} == {False}
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "pool.add")).all()
    assert [entry.after["added"] for entry in entries] == [1897, 0]


def test_an_import_with_no_valid_key_is_a_400(client, admin_headers):
    refused = client.post("/admin/api/upstream-keys", json={"keys": ["nope", "x y"]}, headers=admin_headers)
    assert refused.status_code == 400 and "not an API key" in refused.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(UpstreamKey)) == 0


def test_the_page_imports_a_file_and_pasted_keys_and_reports(admin_browser):
    token = csrf_token(admin_browser, "/admin/keys")
    text = "\n".join(secret(n) for n in range(500)) + "\nbad!\n" + secret(3) + ", " + secret(4)
    sent = admin_browser.post("/admin/keys", data={
        "csrf_token": token, "keys": f"{secret(600)} {secret(601)}", "label": "ops",
        "file": (io.BytesIO(text.encode()), "keys.txt")}, content_type="multipart/form-data")
    html = sent.get_data(as_text=True)
    assert sent.status_code == 200, html
    assert "Added 502 key(s); 2 already in the pool; 1 invalid." in html
    assert "not an API key" in html and "502</strong> added" in html
    assert {key.label for key in db.session.scalars(select(UpstreamKey))} == {"ops"}
    binary = admin_browser.post("/admin/keys", data={"csrf_token": token,
                                                     "file": (io.BytesIO(b"\xff\xfe\x00"), "k.txt")},
                                content_type="multipart/form-data")
    assert binary.status_code == 400 and "Not a text file" in binary.get_data(as_text=True)
    empty = admin_browser.post("/admin/keys", data={"csrf_token": token, "keys": ""})
    assert empty.status_code == 400 and "Paste keys or choose a file" in empty.get_data(as_text=True)
    no_csrf = admin_browser.post("/admin/keys", data={"keys": secret(900)})
    assert no_csrf.status_code == 400
    assert db.session.scalar(select(db.func.count()).select_from(UpstreamKey)) == 502


def test_bulk_actions_through_the_api(client, admin_headers, big_pool):
    ids = big_pool[1:6]
    disabled = client.post("/admin/api/upstream-keys/bulk", json={"action": "disable", "ids": [*ids, 999_999]},
                           headers=admin_headers)
    assert disabled.status_code == 200
    assert disabled.get_json() == {"action": "disable", "changed": ids, "unchanged": [], "missing": [999_999]}
    db.session.expire_all()
    assert {db.session.get(UpstreamKey, key_id).state for key_id in ids} == {UpstreamKeyState.DISABLED}
    assert all(runtime().health.rotator._disabled_until(key_id, time.time()) > time.time() for key_id in ids)
    enabled = client.post("/admin/api/upstream-keys/bulk", json={"action": "enable", "ids": [ids[0], big_pool[0]]},
                          headers=admin_headers).get_json()
    assert enabled["changed"] == [big_pool[0], ids[0]]
    labelled = client.post("/admin/api/upstream-keys/bulk", json={"action": "label", "ids": ids, "label": " red "},
                           headers=admin_headers).get_json()
    assert labelled["changed"] == ids
    deleted = client.post("/admin/api/upstream-keys/bulk", json={"action": "delete", "ids": ids[:2]},
                          headers=admin_headers).get_json()
    assert deleted["changed"] == ids[:2]
    db.session.expire_all()
    rows = [db.session.get(UpstreamKey, key_id) for key_id in ids]
    assert [(row.state.value, row.label) for row in rows] == [("deleted", "red")] * 2 + [("disabled", "red")] * 3
    assert rows[0].secret_encrypted == "", "deleted in bulk is deleted for good, secret wiped"
    again = client.post("/admin/api/upstream-keys/bulk", json={"action": "delete", "ids": ids[:2]},
                        headers=admin_headers).get_json()
    assert again["missing"] == ids[:2]
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["pool.bulk_disable", "pool.bulk_enable", "pool.bulk_label", "pool.bulk_delete"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool.bulk_label"))
    assert entry.after == {"keys": {str(key_id): "red" for key_id in ids}}


def test_bulk_actions_through_the_page(admin_browser, big_pool):
    token = csrf_token(admin_browser, "/admin/keys")
    ids = [str(key_id) for key_id in big_pool[1:4]]
    done = admin_browser.post("/admin/keys/bulk?q=team&page=1", data={"csrf_token": token, "action": "disable",
                                                                       "ids": ids})
    assert done.status_code == 302 and done.location.endswith("/admin/keys?q=team&page=1")
    db.session.expire_all()
    assert {db.session.get(UpstreamKey, int(key_id)).state.value for key_id in ids} == {"disabled"}
    assert admin_browser.post("/admin/keys/bulk", data={"action": "disable", "ids": ids}).status_code == 400
    none = admin_browser.post("/admin/keys/bulk", data={"csrf_token": token, "action": "disable"})
    assert none.status_code == 400 and "Select at least one key" in none.get_data(as_text=True)
    junk = admin_browser.post("/admin/keys/bulk", data={"csrf_token": token, "action": "explode", "ids": ids})
    assert junk.status_code == 400
    letters = admin_browser.post("/admin/keys/bulk", data={"csrf_token": token, "action": "enable", "ids": ["x"]})
    assert letters.status_code == 400 and "Not a key id" in letters.get_data(as_text=True)


BAD_INPUT = [
    ("get", "/admin/api/upstream-keys?per_page=0", None),
    ("get", "/admin/api/upstream-keys?per_page=501", None),
    ("get", "/admin/api/upstream-keys?page=0", None),
    ("get", "/admin/api/upstream-keys?page=x", None),
    ("get", "/admin/api/upstream-keys?state=sleeping", None),
    ("post", "/admin/api/upstream-keys", {"keys": "AIzaSyPOOL0000"}),
    ("post", "/admin/api/upstream-keys", {"keys": []}),
    ("post", "/admin/api/upstream-keys", {"keys": ["k"] * 10_001}),
    ("post", "/admin/api/upstream-keys", {"keys": [7]}),
    ("post", "/admin/api/upstream-keys/bulk", {"action": "explode", "ids": [1]}),
    ("post", "/admin/api/upstream-keys/bulk", {"action": "disable", "ids": []}),
    ("post", "/admin/api/upstream-keys/bulk", {"action": "disable", "ids": ["1"]}),
    ("post", "/admin/api/upstream-keys/bulk", {"action": "label", "ids": [1]}),
    ("post", "/admin/api/upstream-keys/bulk", {"action": "label", "ids": [1], "label": "x" * 101}),
    ("post", "/admin/api/upstream-keys/check", {"ids": "all"}),
    ("post", "/admin/api/upstream-keys/check", {"ids": []}),
    ("post", "/admin/api/upstream-keys/check", [1, 2]),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUT)
def test_bad_input_is_a_400(client, admin_headers, method, path, body):
    response = getattr(client, method)(path, json=body, headers=admin_headers) if body is not None else \
        getattr(client, method)(path, headers=admin_headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(Job)) == 0


def test_an_unknown_job_is_a_404(client, admin_headers):
    assert client.get("/admin/api/jobs/nope", headers=admin_headers).status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/admin/api/upstream-keys"), ("post", "/admin/api/upstream-keys"),
    ("post", "/admin/api/upstream-keys/bulk"), ("post", "/admin/api/upstream-keys/check"),
    ("get", "/admin/api/jobs/0123"),
])
def test_the_api_is_for_admins_only(client, make_user, auth_headers, method, path):
    headers = auth_headers(make_user())
    response = getattr(client, method)(path, json={"keys": [secret(1)], "action": "delete", "ids": [1]},
                                       headers=headers)
    assert response.status_code == 403


def test_the_pages_are_for_admins_only(app, make_user):
    make_user(email="ada@example.com")
    browser = app.test_client()
    log_in(browser, "ada@example.com")
    token = csrf_token(browser, "/dashboard")
    assert browser.get("/admin/keys").status_code == 403
    for path in ("/admin/keys", "/admin/keys/bulk", "/admin/keys/check"):
        assert browser.post(path, data={"csrf_token": token, "keys": secret(1), "action": "delete", "ids": ["1"],
                                        "scope": "all"}).status_code == 403
    assert db.session.scalar(select(db.func.count()).select_from(Job)) == 0


def wait_for(client, headers, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The tests share one app context, so requests share its session: end its transaction as the end of
        # a request does, or SQLite keeps the job's thread waiting for the lock.
        db.session.rollback()
        job = client.get(f"/admin/api/jobs/{job_id}", headers=headers).get_json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running: {job}")


@pytest.fixture
def checked_pool(app, fake_gemini):
    """120 keys of the fake upstream: 15 it no longer knows, 5 cooling for the check, 5 disabled."""
    app.config["GEMINI_BASE_URL"] = fake_gemini.base_url
    runtime().upstream.base_url = fake_gemini.base_url
    secrets = [fake_gemini.new_key() for _ in range(120)]
    for gone in secrets[:15]:
        fake_gemini.remove_key(gone)
    report = bulk.import_upstream_keys(db.session, secrets, runtime().secret_box)
    keys = [added.key for added in report.added]
    for key in keys[15:20]:
        db.session.add(UpstreamCooldown(upstream_key_id=key.id, model="*", until=utcnow() + timedelta(minutes=5),
                                        reason="circuit breaker"))
    for key in keys[20:25]:
        key.state, key.disabled_reason = UpstreamKeyState.DISABLED, "disabled by an admin"
    db.session.commit()
    runtime().health.refresh(force=True)
    return secrets, [key.id for key in keys]


def test_a_check_job_over_many_keys_finishes_reports_and_disables_the_invalid(client, admin_headers, fake_gemini,
                                                                              checked_pool):
    secrets, ids = checked_pool
    started = client.post("/admin/api/upstream-keys/check", headers=admin_headers)
    assert started.status_code == 202
    assert started.get_json()["total"] == 120 and started.get_json()["state"] == "queued"
    job = wait_for(client, admin_headers, started.get_json()["id"])
    assert (job["state"], job["done"], job["total"]) == ("done", 120, 120), job
    results = {item["id"]: item["result"] for item in job["results"]}
    assert [results[key_id] for key_id in ids[:15]] == ["invalid"] * 15
    assert [results[key_id] for key_id in ids[15:20]] == ["cooling"] * 5
    assert [results[key_id] for key_id in ids[20:25]] == ["disabled"] * 5
    assert {results[key_id] for key_id in ids[25:]} == {"ok"}
    assert job["counts"] == {"invalid": 15, "cooling": 5, "disabled": 5, "ok": 95}
    for resting in secrets[15:25]:
        assert fake_gemini.requests_for(resting) == [], "a cooling or disabled key is not called"
    db.session.expire_all()
    states = {key.id: key.state for key in db.session.scalars(select(UpstreamKey))}
    assert [states[key_id] for key_id in ids[:15]] == [UpstreamKeyState.DISABLED] * 15
    assert {states[key_id] for key_id in ids[25:]} == {UpstreamKeyState.ACTIVE}
    assert "API_KEY_INVALID" in db.session.get(UpstreamKey, ids[0]).disabled_reason
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool.check"))
    assert entry.after == {"ids": "all"}
    again = client.get(f"/admin/api/jobs/{job['id']}", headers=admin_headers).get_json()
    assert again == job, "the finished job reads the same later"


def test_checking_selected_keys_from_the_page_shows_the_job_after_a_reload(admin_browser, fake_gemini, checked_pool):
    _secrets, ids = checked_pool
    token = csrf_token(admin_browser, "/admin/keys")
    sent = admin_browser.post("/admin/keys/check", data={"csrf_token": token, "scope": "selected",
                                                         "ids": [str(ids[0]), str(ids[30])]})
    assert sent.status_code == 302
    job = db.session.scalar(select(Job))
    assert job.total == 2 and job.params == {"ids": [ids[0], ids[30]]}
    page = admin_browser.get("/admin/keys").get_data(as_text=True)
    assert f'data-job="{job.id}"' in page and f'/admin/api/jobs/{job.id}' in page
    finished = wait_for(admin_browser, {}, job.id)
    assert {item["id"]: item["result"] for item in finished["results"]} == {ids[0]: "invalid", ids[30]: "ok"}
    reloaded = admin_browser.get("/admin/keys").get_data(as_text=True)
    assert "Last check finished" in reloaded and "invalid: 1" in reloaded and "ok: 1" in reloaded
    assert admin_browser.post("/admin/keys/check", data={"scope": "all"}).status_code == 400, "CSRF"
    none = admin_browser.post("/admin/keys/check", data={"csrf_token": token, "scope": "selected"})
    assert none.status_code == 400 and "Select at least one key to check" in none.get_data(as_text=True)


def test_a_job_whose_worker_stopped_reads_as_failed(client, admin_headers, admin):
    job = create_job(db.session, key_check.KIND, 10, {"ids": None}, admin.id)
    job.state, job.done = "running", 3
    job.heartbeat_at = utcnow() - timedelta(seconds=STALE_SECONDS + 5)
    fresh = create_job(db.session, key_check.KIND, 10, {"ids": None}, admin.id)
    fresh.state = "running"
    db.session.commit()
    stale = client.get(f"/admin/api/jobs/{job.id}", headers=admin_headers).get_json()
    assert (stale["state"], stale["done"]) == ("failed", 3) and "stopped" in stale["error"]
    assert client.get(f"/admin/api/jobs/{fresh.id}", headers=admin_headers).get_json()["state"] == "running"


def test_bulk_disable_of_a_key_resting_after_failures_disables_it_for_good(client, admin_headers):
    """A key the pool set aside for an hour (consecutive failures) comes back by itself when the hour is up; an
    admin's explicit disable -- as PATCH state=disabled does -- lasts until re-enabled."""
    (added,) = bulk.import_upstream_keys(db.session, [secret(1)], runtime().secret_box).added
    key, until = added.key, utcnow() + timedelta(hours=1)
    key.state, key.disabled_until = UpstreamKeyState.DISABLED, until
    key.disabled_reason, key.consecutive_failures = "5 consecutive failures: HTTP 500", 5
    db.session.commit()
    answer = client.post("/admin/api/upstream-keys/bulk", headers=admin_headers,
                         json={"action": "disable", "ids": [key.id]})
    assert answer.get_json() == {"action": "disable", "changed": [key.id], "unchanged": [], "missing": []}
    read_snapshot(db.session, runtime().secret_box, (utcnow() + timedelta(hours=2)).timestamp())  # 2 hours on
    db.session.expire_all()
    row = db.session.get(UpstreamKey, key.id)
    assert (row.state, row.disabled_until, row.disabled_reason) == (UpstreamKeyState.DISABLED, None,
                                                                    "disabled by an admin")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pool.bulk_disable"))
    assert (entry.before, entry.after) == ({"keys": {str(key.id): f"disabled until {isoformat(until)}"}},
                                           {"keys": {str(key.id): "disabled"}})
    again = client.post("/admin/api/upstream-keys/bulk", headers=admin_headers,
                        json={"action": "disable", "ids": [key.id]}).get_json()
    assert again["unchanged"] == [key.id], "disabled for good already"


def test_a_second_check_while_one_runs_starts_no_second_job(client, admin, admin_headers, admin_browser):
    """Each job makes VAULT_KEY_CHECK_CONCURRENCY calls at once: two admins (or a double click) starting a check
    together must not double the load on the upstream -- the running job is the answer, through the API or
    the page, and nothing is audited."""
    running = create_job(db.session, key_check.KIND, 1, {"ids": None}, admin.id, exclusive=True)
    running.state, running.started_at, running.heartbeat_at = "running", utcnow(), utcnow()
    db.session.commit()
    answer = client.post("/admin/api/upstream-keys/check", headers=admin_headers)
    assert answer.status_code == 202 and answer.get_json()["id"] == running.id
    token = csrf_token(admin_browser, "/admin/keys")
    page = admin_browser.post("/admin/keys/check", data={"csrf_token": token, "scope": "all"}, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "A check is already running" in html
    assert f'data-job="{running.id}"' in html and "Checking keys…" in html
    db.session.rollback()
    assert db.session.scalars(select(Job.id)).all() == [running.id]
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "pool.check")).all() == []


def test_a_check_job_over_2000_keys_finishes_and_reports(app, client, admin_headers, fake_gemini):
    """The issue's scale: 2,000 keys of the fake upstream, 40 of which it no longer knows."""
    app.config["GEMINI_BASE_URL"] = fake_gemini.base_url
    runtime().upstream.base_url = fake_gemini.base_url
    secrets = [fake_gemini.new_key() for _ in range(2000)]
    for gone in secrets[::50]:
        fake_gemini.remove_key(gone)
    bulk.import_upstream_keys(db.session, secrets, runtime().secret_box)
    db.session.commit()
    runtime().health.refresh(force=True)
    started = client.post("/admin/api/upstream-keys/check", headers=admin_headers)
    assert started.status_code == 202 and started.get_json()["total"] == 2000
    job = wait_for(client, admin_headers, started.get_json()["id"], timeout=240)
    assert (job["state"], job["done"], job["total"]) == ("done", 2000, 2000), job
    assert job["counts"] == {"invalid": 40, "ok": 1960}
    listed = client.get("/admin/api/upstream-keys?state=disabled", headers=admin_headers).get_json()
    assert listed["total"] == 40
