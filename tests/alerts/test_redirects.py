"""A webhook that redirects is not followed: the delivery records the 307 and is retried later."""

from tests.alerts.receivers import Webhook
from vault.alerts import settings
from vault.extensions import db
from vault.models import AlertEvent
from vault.runtime import runtime


class Redirecting(Webhook):
    """Answers every POST with a 307 to `target`."""

    def __init__(self, target: str):
        super().__init__(statuses=[])
        self.target = target
        hook = self

        def do_post(request) -> None:
            body = request.rfile.read(int(request.headers["Content-Length"]))
            hook.received.append((dict(request.headers), body))
            request.send_response(307)
            request.send_header("Location", hook.target)
            request.send_header("Content-Length", "0")
            request.end_headers()

        self.server.RequestHandlerClass.do_POST = do_post


def test_a_redirecting_webhook_is_not_followed(app, make_user):
    inner = Webhook()
    outer = Redirecting(inner.url)
    try:
        settings.set_webhook(db.session, runtime().secret_box, outer.url, "review15-signing-secret")
        user = make_user(balance="0.10", low_balance_threshold_nano=10**9)
        db.session.commit()
        runtime().alerts.run_once()
        assert len(outer.received) == 1 and inner.received == [], "the redirect was followed"
        event = db.session.scalars(db.select(AlertEvent)).one()
        assert event.state == "pending" and event.last_error == "HTTP 307", user.id
    finally:
        outer.close()
        inner.close()
