"""xpbase/mail.py: templates, header injection, and a real SMTP server."""

from __future__ import annotations

import pytest

from tests.delivery_standins import SMTPStandIn
from xpbase import mail
from xpbase.settings import Settings


def test_html_is_escaped_and_text_is_not() -> None:
    """The HTML body escapes what members wrote; the text body keeps it as written."""
    message = mail.render(
        "notification",
        "Hi",
        "ada@example.org",
        display_name="<b>Ada</b>",
        title="T",
        body="a & b",
        collapsed=0,
        kind="tier_up",
    )
    assert "&lt;b&gt;Ada&lt;/b&gt;" in message.html and "a &amp; b" in message.html
    assert "Hello <b>Ada</b>," in message.text


@pytest.mark.parametrize("field", ["to", "subject"])
def test_line_breaks_in_headers_are_refused(field: str) -> None:
    """CR/LF in an address or a subject (header injection) is a permanent MailError."""
    values = {"to": "ada@example.org", "subject": "Hi"} | {field: "x\r\nBcc: eve@example.org"}
    with pytest.raises(mail.MailError) as caught:
        mail.build_message(mail.Mail(text="t", html="h", **values), "xpbase <noreply@example.org>")
    assert caught.value.permanent


async def test_send_through_a_real_smtp_server() -> None:
    """aiosmtplib delivers one multipart/alternative message with our Message-ID to aiosmtpd."""
    server = SMTPStandIn()
    port = server.start()
    try:
        settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
        await mail.send(
            mail.Mail("ada@example.org", "Hi", "text", "<p>html</p>", "<m-1@example.org>"), settings
        )
    finally:
        server.stop()
    assert [m["Message-ID"] for m in server.messages] == ["<m-1@example.org>"]
    assert server.envelopes[0].rcpt_tos == ["ada@example.org"]
    assert server.messages[0].get_content_type() == "multipart/alternative"
