"""The /rank card: a PNG drawn with Pillow.

Layout (934 x 282 pixels, the size Discord shows uncropped in an embed):
the avatar in a circle on the left; the name, rank and level at the top; a
progress bar from the XP where the current level starts to the XP of the
next level; under it the tier and the status in each layer. The accent colour
(the bar's fill) is the tier's colour.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

from bot import card_text

WIDTH, HEIGHT = 934, 282
BACKGROUND = (35, 39, 42)
PANEL = (47, 49, 54)
TRACK = (72, 75, 78)
TEXT = (255, 255, 255)
MUTED = (185, 187, 190)
AVATAR_BOX = (40, 41, 240, 241)  # left, top, right, bottom: a 200 px circle
BAR_BOX = (280, 168, 894, 204)  # the progress bar's track
TIER_COLOURS: dict[str, tuple[int, int, int]] = {
    # Every tier has a saturated, bright colour: a grey accent reads as "disabled" (issue 17).
    "basic": (230, 126, 34),
    "member": (87, 242, 135),
    "advanced": (88, 101, 242),
    "elite": (155, 89, 182),
    "master": (241, 196, 15),
}
DEFAULT_ACCENT = (88, 101, 242)
#: Rank card styles bought in the store (store_items.rank_card_style, kept in profiles.rank_card_style):
#: the accent they paint the card in instead of the tier's colour; a style not listed keeps the tier's.
STYLE_ACCENTS: dict[str, tuple[int, int, int]] = {
    "gold": (212, 175, 55),
    "neon": (57, 255, 20),
    "rose": (255, 102, 153),
    "midnight": (72, 61, 139),
}


#: The "Custom rank card" unlock's safe set (supabase/sql/97_rank_cards.sql checks the same names): accents
#: that are all saturated and bright, backgrounds (card, panel) that are all dark, so text stays readable.
CUSTOM_ACCENTS: dict[str, tuple[int, int, int]] = {
    "ember": (230, 126, 34),
    "gold": (212, 175, 55),
    "neon": (57, 255, 20),
    "rose": (255, 102, 153),
    "ocean": (52, 152, 219),
    "violet": (155, 89, 182),
}
CUSTOM_BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "slate": (BACKGROUND, PANEL),
    "night": ((16, 18, 28), (28, 31, 46)),
    "forest": ((18, 32, 24), (28, 48, 36)),
    "wine": ((36, 16, 24), (54, 26, 38)),
    "ocean": ((12, 28, 40), (20, 42, 60)),
}


@dataclass(frozen=True)
class LayerStatus:
    """A member's standing in one layer: ``name`` (Reality), ``status`` (Awakened), ``xp``."""

    name: str
    status: str
    xp: int


@dataclass(frozen=True)
class RankCard:
    """What the card shows. XP figures are totals; ``level_xp``/``next_level_xp`` are where the current and
    the next level start (``next_level_xp`` None at the top of the curve). ``rank`` None: not ranked
    (hidden from leaderboards, or no rank available)."""

    name: str
    level: int
    xp: int
    level_xp: int
    next_level_xp: int | None
    tier: str
    tier_name: str
    rank: int | None = None
    layers: Sequence[LayerStatus] = field(default_factory=tuple)
    style: str | None = None
    custom_accent: str | None = None
    custom_background: str | None = None
    #: Short badge marks (``badge_marks``: "🥇 2"), drawn bottom right.
    badges: Sequence[str] = field(default_factory=tuple)

    @property
    def progress(self) -> float:
        """How far from the current level to the next, 0.0 to 1.0 (1.0 at the top of the curve)."""
        if self.next_level_xp is None or self.next_level_xp <= self.level_xp:
            return 1.0
        return min(max((self.xp - self.level_xp) / (self.next_level_xp - self.level_xp), 0.0), 1.0)

    @property
    def accent(self) -> tuple[int, int, int]:
        """The card's accent colour (RGB): the member's own choice (Custom rank card unlock), else the bought
        style's (STYLE_ACCENTS), else the member's tier's."""
        if self.custom_accent in CUSTOM_ACCENTS:
            return CUSTOM_ACCENTS[self.custom_accent]
        if self.style in STYLE_ACCENTS:
            return STYLE_ACCENTS[self.style]
        return TIER_COLOURS.get(self.tier, DEFAULT_ACCENT)


#: The medal drawn for each badge level (supabase/sql/33_badges.sql: bronze, silver, gold), best first.
MEDALS = (("gold", "🥇"), ("silver", "🥈"), ("bronze", "🥉"))


def badge_marks(counts: Mapping[str, int]) -> tuple[str, ...]:
    """The card's badge marks from a member's badge counts per level: ``{"gold": 2, "bronze": 1}`` gives
    ``("🥇 2", "🥉 1")``; levels held zero times are left out (no badges: an empty tuple)."""
    return tuple(f"{medal} {counts[level]}" for level, medal in MEDALS if counts.get(level, 0) > 0)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # DejaVu covers far more scripts than Pillow's bundled font; use it when the system has it.
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _short(number: int) -> str:
    """1234 -> 1.2K, 1234567 -> 1.2M: how XP reads on rank cards."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if abs(number) >= limit:
            return f"{number / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(number)


def _avatar(avatar: bytes | None, accent: tuple[int, int, int]) -> Image.Image:
    size = AVATAR_BOX[2] - AVATAR_BOX[0]
    image: Image.Image
    if avatar:
        try:
            with Image.open(io.BytesIO(avatar)) as raw:
                image = ImageOps.fit(raw.convert("RGBA"), (size, size), method=Image.Resampling.LANCZOS)
        except (OSError, ValueError):
            image = Image.new("RGBA", (size, size), (*accent, 255))
    else:
        image = Image.new("RGBA", (size, size), (*accent, 255))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    image.putalpha(mask)
    return image


def render_rank_card(card: RankCard, avatar: bytes | None = None) -> bytes:
    """The card as PNG bytes. ``avatar`` is any image Pillow reads (Discord serves PNG/WebP/GIF); None or
    an unreadable image gives a disc in the tier's colour."""
    background, panel = CUSTOM_BACKGROUNDS.get(card.custom_background or "slate", (BACKGROUND, PANEL))
    image = Image.new("RGBA", (WIDTH, HEIGHT), (*background, 255))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((16, 16, WIDTH - 17, HEIGHT - 17), radius=24, fill=panel)

    image.alpha_composite(_avatar(avatar, card.accent), (AVATAR_BOX[0], AVATAR_BOX[1]))
    draw.ellipse(AVATAR_BOX, outline=card.accent, width=5)

    left, right = BAR_BOX[0], BAR_BOX[2]
    # Rank and level, right-aligned at the top.
    rank_text = f"#{card.rank}" if card.rank is not None else "—"
    parts = [
        ("RANK ", _font(24), MUTED),
        (rank_text, _font(44), TEXT),
        ("   LEVEL ", _font(24), MUTED),
        (str(card.level), _font(44), card.accent),
    ]
    x = right
    for text, font, colour in reversed(parts):
        x -= draw.textlength(text, font=font)
        draw.text((x, 78), text, font=font, fill=colour, anchor="ls")
    name_width = int(x - left - 24)
    # Names in any script, with emoji (bot/card_text.py: DejaVu, a CJK font, Noto Color Emoji).
    card_text.draw_text(image, (left, 150), card_text.fit(card.name, 40, max(name_width, 80)), 40, TEXT)

    if card.next_level_xp is None:
        xp_text = f"{_short(card.xp)} XP · top level"
    else:
        xp_text = f"{_short(card.xp - card.level_xp)} / {_short(card.next_level_xp - card.level_xp)} XP"
    draw.text((right, 150), xp_text, font=_font(24), fill=MUTED, anchor="rs")

    # The bar: the track, then the filled part (at least its rounded ends when there is any progress).
    radius = (BAR_BOX[3] - BAR_BOX[1]) // 2
    draw.rounded_rectangle(BAR_BOX, radius=radius, fill=TRACK)
    filled = round((right - left) * card.progress)
    if filled > 0:
        draw.rounded_rectangle(
            (left, BAR_BOX[1], left + max(filled, 2 * radius), BAR_BOX[3]), radius=radius, fill=card.accent
        )

    statuses = " · ".join(f"{layer.name}: {layer.status}" for layer in card.layers)
    footer = f"{card.tier_name} tier" + (f"   {statuses}" if statuses else "")
    badges = "  ".join(card.badges)
    badge_width = card_text.text_length(badges, 24) if badges else 0
    if badges:
        card_text.draw_text(image, (right - badge_width, 244), badges, 24, TEXT)
    footer_width = right - left - (badge_width + 24 if badges else 0)
    card_text.draw_text(image, (left, 244), card_text.fit(footer, 24, footer_width), 24, MUTED)

    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()
