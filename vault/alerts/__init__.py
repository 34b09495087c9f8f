"""Alerts for operators: low balances, a thinning pool, disabled keys -- raised off the proxy's
path and delivered to a signed webhook (and optionally by email) from a background monitor.

`raising` turns conditions into `AlertEvent` rows (once per crossing), `delivery` claims and
sends them, `signing` makes and checks `X-GV-Signature`, `mail` speaks SMTP, `settings` keeps
the admin's choices, and `monitor.Alerts` (one per worker, in the runtime) ties them together.
"""

from flask import Flask, current_app

from vault.alerts.delivery import DeliveryPolicy
from vault.alerts.mail import SmtpSettings
from vault.alerts.monitor import Alerts


def alerts_from_config(config, session_factory, box) -> Alerts:
    """The worker's monitor, built from `VAULT_ALERT_*` and `VAULT_SMTP_*`."""
    smtp = None
    if config["VAULT_SMTP_HOST"]:
        smtp = SmtpSettings(config["VAULT_SMTP_HOST"], config["VAULT_SMTP_PORT"], config["VAULT_SMTP_USER"],
                            config["VAULT_SMTP_PASSWORD"], config["VAULT_SMTP_FROM"], config["VAULT_SMTP_STARTTLS"])
    policy = DeliveryPolicy(max_attempts=config["VAULT_ALERT_MAX_ATTEMPTS"],
                            retry_base=config["VAULT_ALERT_RETRY_SECONDS"],
                            timeout=config["VAULT_ALERT_TIMEOUT_SECONDS"])
    return Alerts(session_factory, box, config["VAULT_ALERT_INTERVAL_SECONDS"], policy, smtp)


def install_alerts(app: Flask) -> None:
    """Let requests start the worker's alert monitor (a cheap check once it runs)."""

    @app.before_request
    def start_alert_monitor() -> None:
        current_app.extensions["vault"].alerts.tick()


__all__ = ["Alerts", "DeliveryPolicy", "SmtpSettings", "alerts_from_config", "install_alerts"]
