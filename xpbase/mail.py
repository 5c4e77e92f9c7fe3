"""Outgoing email over SMTP (aiosmtplib): one sender for every feature that mails people.

Settings (xpbase/settings.py): ``XPBASE_SMTP_HOST``, ``_PORT``, ``_TLS``
(``starttls``, ``tls`` or ``none``), ``_USER``, ``_PASSWORD``, ``_FROM``. AWS SES
and every other provider speak SMTP. Bodies come from Jinja templates in
``xpbase/templates/email/``: ``<name>.txt`` (plain text) and ``<name>.html``
(autoescaped), sent as one ``multipart/alternative`` message.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from xpbase.settings import Settings

_templates = Environment(
    loader=PackageLoader("xpbase", "templates/email"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


class MailError(RuntimeError):
    """Mail could not be sent. ``permanent``: the server refused it for good (5xx); else try again later."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Mail:
    """One message: recipient address, subject, text and HTML bodies, optional Message-ID."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str | None = None


def render(template: str, subject: str, to: str, *, message_id: str | None = None, **context: Any) -> Mail:
    """A Mail whose bodies are ``<template>.txt`` and ``<template>.html`` rendered with ``context``."""
    return Mail(
        to=to,
        subject=subject,
        text=_templates.get_template(f"{template}.txt").render(**context),
        html=_templates.get_template(f"{template}.html").render(**context),
        message_id=message_id,
    )


def _check_header(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise MailError(f"{what} contains a line break", permanent=True)
    return value


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The MIME message for ``mail`` from ``sender``. Raises MailError for header injection (CR/LF)."""
    message = EmailMessage()
    message["From"] = _check_header(sender, "From")
    message["To"] = _check_header(mail.to, "To")
    message["Subject"] = _check_header(mail.subject, "Subject")
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = _check_header(mail.message_id or make_msgid(domain=domain), "Message-ID")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def configured(settings: Settings) -> bool:
    """Whether an SMTP server is set (``XPBASE_SMTP_HOST``)."""
    return bool(settings.smtp_host)


async def send(mail: Mail, settings: Settings) -> None:
    """Send ``mail`` through the configured SMTP server.

    Raises MailError: ``permanent`` for a 5xx refusal of the message or its
    recipient, not permanent for connection problems, timeouts and 4xx answers.
    """
    if not configured(settings):
        raise MailError("XPBASE_SMTP_HOST is not set", permanent=True)
    message = build_message(mail, settings.smtp_from)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password.get_secret_value() or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=True if settings.smtp_tls == "starttls" else False,
            timeout=settings.delivery_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"SMTP refused the recipient: {exc}", permanent=True) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise MailError(f"SMTP: {exc}", permanent=False) from exc
