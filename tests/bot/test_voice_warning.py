"""The bot does not claim voice is unsupported: voice XP reads voice states and needs no PyNaCl or davey."""

import logging

import pytest

from bot.bot import XPBot
from xpbase.settings import Settings


def test_no_pynacl_warning_at_start(caplog: pytest.LogCaptureFixture) -> None:
    """Building the bot logs no "voice will NOT be supported" warning (voice states need neither PyNaCl nor
    davey, the DAVE voice encryption library)."""
    with caplog.at_level(logging.WARNING):
        XPBot(rpc=None, settings=Settings())  # type: ignore[arg-type]
    assert not [r for r in caplog.records if "voice will NOT be supported" in r.getMessage()]
