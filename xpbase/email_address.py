"""Normalising email addresses into identity subjects (provider ``email``).

Policy (README "Email sign-in"): the address is checked for syntax with
``email-validator`` (no DNS lookups); the domain is IDNA-encoded to ASCII and
lower-cased (``bücher.example`` -> ``xn--bcher-kva.example``); the local part
is lower-cased (``str.lower``; not ``casefold``, which would turn ``ß``
into ``ss``, another mailbox), so ``Ada.L@Example.com`` and
``ada.l@example.com`` are one identity. Nothing else is rewritten: dots and
``+tags`` stay, because providers differ on them. Addresses longer than 254
characters, with line breaks or other control characters (header injection),
quoted local parts or IP-literal domains are refused.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_EMAIL_CHARS = 254


class InvalidEmail(ValueError):
    """The address is malformed; the message never contains the address itself."""


def normalise_email(value: str) -> str:
    """The identity subject of an address (see the module's policy). Raises InvalidEmail."""
    if not isinstance(value, str) or not value or len(value) > MAX_EMAIL_CHARS:
        raise InvalidEmail(f"An email address is 1 to {MAX_EMAIL_CHARS} characters.")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidEmail("An email address has no line breaks or control characters.")
    try:
        checked = validate_email(value, check_deliverability=False, allow_quoted_local=False)
    except EmailNotValidError as exc:
        raise InvalidEmail("That is not a valid email address.") from exc
    if not checked.ascii_domain or getattr(checked, "domain_literal", None) is not None:
        raise InvalidEmail("That is not a valid email address.")
    address = f"{checked.local_part.lower()}@{checked.ascii_domain.lower()}"
    if len(address) > MAX_EMAIL_CHARS:
        raise InvalidEmail(f"An email address is 1 to {MAX_EMAIL_CHARS} characters.")
    return address
