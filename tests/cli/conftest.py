"""What the CLI tests share: a database the commands reach through DATABASE_URL, and what they printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xpbase.settings import get_settings


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DATABASE_URL for the commands, with settings read afresh before and after."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def said(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed (the console writes to stderr), with every run of white space one space: the
    console's width is fixed when another test of the same process made it first, and wraps lines there."""
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())
