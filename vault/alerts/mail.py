"""Alert email through the operator's SMTP server (Python's smtplib), one message per alert."""

import json
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

SUMMARIES = {
    "low_balance": lambda p: f"{p['user']['email']} is below their threshold: ${p['balance']:.2f} (alert below "
                             f"${p['threshold']:.2f})",
    "pool_low": lambda p: f"only {p['usable_keys']} of {p['total_keys']} upstream keys are usable "
                          f"(alert below {p['min_usable_keys']})",
    "key_disabled": lambda p: f"upstream key {p['key']['key']} ({p['key']['label'] or 'no label'}) was disabled: "
                              f"{p['reason']}",
}


@dataclass(frozen=True)
class SmtpSettings:
    """`VAULT_SMTP_*`: the server and the sender; no host means no email."""

    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    sender: str = "gemini-vault@localhost"
    starttls: bool = True
    timeout: float = 10.0


def summary(kind: str, payload: dict) -> str:
    """One line saying what happened."""
    return SUMMARIES[kind](payload)


def message(kind: str, payload: dict, sender: str, to: str) -> EmailMessage:
    """The email for one alert: the summary as subject and first line, then the webhook payload."""
    mail = EmailMessage()
    mail["Subject"] = f"[Gemini-Vault] {kind}: {summary(kind, payload)}"[:200]
    mail["From"], mail["To"] = sender, to
    mail.set_content(f"{summary(kind, payload)}\n\n{json.dumps(payload, indent=2)}\n")
    return mail


def send(smtp: SmtpSettings, mail: EmailMessage, connect: Callable[..., smtplib.SMTP] = smtplib.SMTP) -> None:
    """Hand `mail` to the SMTP server (raises `smtplib.SMTPException` or `OSError`)."""
    with connect(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.user:
            client.login(smtp.user, smtp.password or "")
        client.send_message(mail)
