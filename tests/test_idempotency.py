"""Form tokens (vault.idempotency): claimed once, also when two requests race; pruned after a day."""

import threading
from datetime import timedelta

from sqlalchemy import func, select

from vault.clock import utcnow
from vault.extensions import db
from vault.idempotency import claim, new_token, prune, release, well_formed
from vault.models import FormSubmission


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(FormSubmission))


def test_a_token_is_claimed_once(app):
    token, now = new_token(), utcnow()
    assert well_formed(token)
    assert claim(db.session, token, None, now)
    db.session.commit()
    assert not claim(db.session, token, None, now)
    assert claim(db.session, new_token(), None, now)
    db.session.commit()
    assert count() == 2


def test_a_claim_is_committed_at_once_and_a_released_token_can_be_claimed_again(app):
    token = new_token()
    assert claim(db.session, token, None, utcnow())
    db.session.rollback()  # the submission's own work failed: the claim was committed before it
    assert not claim(db.session, token, None, utcnow())
    release(db.session, token)
    assert claim(db.session, token, None, utcnow())


def test_tokens_older_than_a_day_are_pruned_by_the_next_claim(app):
    now = utcnow()
    db.session.add_all([FormSubmission(token=new_token(), created_at=now - timedelta(days=2)),
                        FormSubmission(token=new_token(), created_at=now - timedelta(hours=2))])
    db.session.commit()
    assert claim(db.session, new_token(), None, now)
    db.session.commit()
    assert count() == 2
    assert prune(db.session, now + timedelta(days=2)) == 2


def test_racing_claims_of_one_token_let_exactly_one_through(app):
    token, barrier, wins = new_token(), threading.Barrier(8), []

    def race() -> None:
        with app.app_context():
            barrier.wait()
            won = claim(db.session, token, None, utcnow())
            db.session.commit()
            wins.append(won)
            db.session.remove()

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_only_token_shaped_text_is_well_formed():
    assert not well_formed("")
    assert not well_formed("short")
    assert not well_formed("x" * 65)
    assert not well_formed("a token with spaces in it!")
    assert well_formed(new_token())
