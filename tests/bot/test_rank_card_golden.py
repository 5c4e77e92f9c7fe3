"""Rank cards people keep (bot/rank_card.py, bot/card_text.py): names in any script with emoji, compared
with golden images (a pixel diff with a tolerance), and tier colours that never read as "disabled".

Regenerate the golden images after a deliberate change with ``XPBASE_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import colorsys
import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from bot import card_text
from bot.rank_card import CUSTOM_ACCENTS, STYLE_ACCENTS, TIER_COLOURS, LayerStatus, RankCard, render_rank_card

GOLDEN = Path(__file__).parent.parent / "fixtures" / "rank_cards"
CARDS = {
    "latin_emoji": RankCard(
        name="Grace 🌸✨",
        level=10,
        xp=9000,
        level_xp=8550,
        next_level_xp=10500,
        tier="basic",
        tier_name="Basic",
        rank=2,
        layers=[LayerStatus("Cyber", "Awakened", 900)],
    ),
    "cjk": RankCard(
        name="李小龍 山田",
        level=3,
        xp=600,
        level_xp=500,
        next_level_xp=1050,
        tier="member",
        tier_name="Member",
        rank=1,
    ),
    "custom_colours_badges": RankCard(
        name="Zoë ✨",
        level=12,
        xp=13_000,
        level_xp=12_650,
        next_level_xp=14_950,
        tier="member",
        tier_name="Member",
        rank=7,
        custom_accent="rose",
        custom_background="forest",
        badges=("🏅", "🔥"),
    ),
    "hangul_flag_zwj": RankCard(
        name="김민준 🇮🇳 👩‍💻",
        level=40,
        xp=160_000,
        level_xp=156_000,
        next_level_xp=164_000,
        tier="master",
        tier_name="Master",
        rank=None,
    ),
}


def _differs(a: Image.Image, b: Image.Image) -> float:
    """The share of pixels whose largest channel difference is above 48 (anti-aliasing passes)."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    return sum(diff.histogram()[49:]) / (a.width * a.height)  # pixels of value 49..255


@pytest.mark.parametrize("name", sorted(CARDS))
def test_rank_card_matches_its_golden_image(name: str) -> None:
    png = render_rank_card(CARDS[name])
    path = GOLDEN / f"{name}.png"
    if os.environ.get("XPBASE_UPDATE_GOLDEN"):
        path.write_bytes(png)
    image = Image.open(io.BytesIO(png))
    golden = Image.open(path)
    assert image.size == golden.size
    assert _differs(image, golden) <= 0.005


def test_emoji_and_cjk_come_from_fonts_that_have_them() -> None:
    """Emoji are drawn in colour (not boxes); CJK and Hangul come from the CJK font (DejaVu lacks them)."""
    runs = list(card_text.pieces("Grace 🌸 李 김", 40))
    assert [p for p, f in runs if f is None] == ["🌸"]
    cjk = {p.strip(): getattr(f, "path", "") for p, f in runs if f is not None and p.strip()}
    assert "wqy" in cjk["李"] and "wqy" in cjk["김"] and "DejaVu" in cjk["Grace"]
    canvas = Image.new("RGBA", (200, 80), (0, 0, 0, 255))
    card_text.draw_text(canvas, (10, 60), "🌸", 40, (255, 255, 255))
    r, g, b = canvas.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert r > b and r > g  # a pink blossom, not a white box


@pytest.mark.parametrize(
    "colour", [*TIER_COLOURS.values(), *STYLE_ACCENTS.values(), *CUSTOM_ACCENTS.values()]
)
def test_tier_and_style_colours_never_look_disabled(colour: tuple[int, int, int]) -> None:
    """Saturated and bright: no accent is a grey (which reads as a disabled control)."""
    _, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    assert saturation >= 0.4 and value >= 0.5
