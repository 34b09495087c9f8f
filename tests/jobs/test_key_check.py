"""Checking the pool in the background: one check at a time, even when two requests start one at once."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vault.clock import utcnow
from vault.extensions import db
from vault.jobs import STALE_SECONDS, create_job, key_check
from vault.models import Job
from vault.runtime import runtime


@pytest.fixture
def checker(app) -> key_check.Checker:
    vault = runtime()
    return key_check.Checker(vault.session_factory, vault.health, vault.upstream, 2)


def running_check(**values) -> Job:
    job = create_job(db.session, key_check.KIND, 1, {"ids": None}, None, exclusive=True)
    job.state, job.started_at = "running", utcnow()
    for name, value in values.items():
        setattr(job, name, value)
    db.session.commit()
    return job


def job_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(db.func.count()).select_from(Job))


def wait_until_done(job_id: str) -> Job:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        db.session.rollback()  # end the transaction, or SQLite keeps the job's thread waiting for the lock
        job = db.session.get(Job, job_id)
        if job.state not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still running")


def test_a_second_exclusive_job_of_a_kind_is_refused_while_one_is_active(app):
    running_check()
    with pytest.raises(IntegrityError):
        create_job(db.session, key_check.KIND, 1, {"ids": None}, None, exclusive=True)
    db.session.rollback()
    create_job(db.session, "other.kind", 1, {}, None, exclusive=True)
    create_job(db.session, key_check.KIND, 1, {}, None)  # not exclusive: not held back
    db.session.commit()


def test_a_check_started_while_one_runs_answers_that_one_and_records_nothing(app, checker):
    running = running_check()
    recorded = []
    job, started = key_check.start_check(db.session, checker, None, None, record=lambda: recorded.append(1))
    assert (job.id, started, recorded, job_count()) == (running.id, False, [], 1)


def test_two_checks_started_at_once_start_one(app, checker, monkeypatch):
    """Both requests look for a running check before either inserts: the database lets one in."""
    winner = running_check()
    monkeypatch.setattr(key_check, "active_job", lambda *_args: None)  # this request looked before the insert
    recorded = []
    job, started = key_check.start_check(db.session, checker, None, None, record=lambda: recorded.append(1))
    assert (job.id, started, recorded, job_count()) == (winner.id, False, [], 1)


def test_a_check_whose_worker_stopped_lets_a_new_one_start(app, checker):
    stale = running_check(heartbeat_at=utcnow() - timedelta(seconds=STALE_SECONDS + 5))
    recorded = []
    job, started = key_check.start_check(db.session, checker, None, None, record=lambda: recorded.append(1))
    assert started and job.id != stale.id and recorded == [1]
    assert wait_until_done(job.id).state == "done"
    db.session.expire_all()
    assert (db.session.get(Job, stale.id).state, db.session.get(Job, stale.id).active_kind) == ("failed", None)


def test_a_finished_check_lets_the_next_one_start(app, checker):
    first, started = key_check.start_check(db.session, checker, None, None)
    assert started
    finished = wait_until_done(first.id)
    assert (finished.state, finished.active_kind) == ("done", None)
    second, started = key_check.start_check(db.session, checker, None, None)
    assert started and second.id != first.id
    wait_until_done(second.id)
