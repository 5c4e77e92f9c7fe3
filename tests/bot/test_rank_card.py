"""The /rank card: PNG size, the avatar, the progress bar's fill, and the progress arithmetic."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.rank_card import (
    BAR_BOX,
    HEIGHT,
    STYLE_ACCENTS,
    TIER_COLOURS,
    TRACK,
    WIDTH,
    LayerStatus,
    RankCard,
    badge_marks,
    render_rank_card,
)
from tests.bot.discord_api import png

AVATAR = (10, 200, 30)


def card(**changes: object) -> RankCard:
    values: dict[str, object] = {
        "name": "Ada Lovelace",
        "level": 5,
        "xp": 2275,
        "level_xp": 1800,
        "next_level_xp": 2750,
        "tier": "member",
        "tier_name": "Member",
        "rank": 3,
        "layers": (LayerStatus("Reality", "Awakened", 600), LayerStatus("Cyber", "Connected", 1675)),
    }
    values.update(changes)
    return RankCard(**values)  # type: ignore[arg-type]


def bar_pixel(image: Image.Image, fraction: float) -> tuple[int, ...]:
    left, top, right, bottom = BAR_BOX
    return image.getpixel((left + round((right - left) * fraction), (top + bottom) // 2))  # type: ignore[return-value]


def test_rank_card_is_a_png_of_the_card_size_with_avatar_and_half_filled_bar() -> None:
    """Halfway from level 5 (1800 XP) to 6 (2750 XP): the bar is filled to the middle in the tier colour."""
    data = render_rank_card(card(), png(AVATAR, 64))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    assert image.getpixel((140, 141)) == AVATAR  # the avatar circle's centre
    assert bar_pixel(image, 0.25) == TIER_COLOURS["member"]
    assert bar_pixel(image, 0.45) == TIER_COLOURS["member"]
    assert bar_pixel(image, 0.55) == TRACK
    assert bar_pixel(image, 0.9) == TRACK


def test_rank_card_at_the_top_level_has_a_full_bar_and_no_avatar_disc_in_the_tier_colour() -> None:
    """No next level: the bar is full; without an avatar the circle is the tier's colour."""
    image = Image.open(io.BytesIO(render_rank_card(card(level=100, next_level_xp=None, tier="master"), None)))
    image = image.convert("RGB")
    assert image.getpixel((140, 141)) == TIER_COLOURS["master"]
    assert bar_pixel(image, 0.1) == bar_pixel(image, 0.95) == TIER_COLOURS["master"]


def test_rank_card_survives_an_unreadable_avatar_and_a_very_long_name() -> None:
    """Garbage avatar bytes and a 64-character name still give a card of the right size."""
    data = render_rank_card(card(name="W" * 64, rank=None), b"not an image")
    assert Image.open(io.BytesIO(data)).size == (WIDTH, HEIGHT)


@given(
    level_xp=st.integers(0, 10**6),
    span=st.integers(1, 10**6),
    offset=st.integers(-(10**6), 2 * 10**6),
)
def test_progress_is_the_share_of_the_level_done_within_zero_and_one(
    level_xp: int, span: int, offset: int
) -> None:
    """progress = (xp - level start) / (next level - level start), clamped to [0, 1]."""
    progress = card(xp=level_xp + offset, level_xp=level_xp, next_level_xp=level_xp + span).progress
    assert 0.0 <= progress <= 1.0
    if 0 <= offset <= span:
        assert progress == offset / span


def test_a_bought_rank_card_style_paints_the_card_and_an_unknown_one_keeps_the_tier_colour() -> None:
    """A bought style ("gold") fills the bar in gold; an unknown style keeps the tier's colour."""
    gold = Image.open(io.BytesIO(render_rank_card(card(style="gold"), None))).convert("RGB")
    assert bar_pixel(gold, 0.25) == STYLE_ACCENTS["gold"]
    odd = Image.open(io.BytesIO(render_rank_card(card(style="plaid"), None))).convert("RGB")
    assert bar_pixel(odd, 0.25) == TIER_COLOURS["member"]


def test_badge_marks_show_each_level_held_best_first() -> None:
    """Counts per level become medal marks, gold first; levels held zero times are left out."""
    assert badge_marks({"bronze": 3, "silver": 0, "gold": 2}) == ("🥇 2", "🥉 3")
    assert badge_marks({"bronze": 0, "silver": 0, "gold": 0}) == ()
