"""Text on rank cards in any script, with emoji: Pillow with a chain of local fonts, no network.

A run of text is cut into pieces drawn with the first font that has their glyphs:

- emoji (found with the ``emoji`` package, ZWJ sequences and flags included) come from Noto Color Emoji
  (Debian's ``fonts-noto-color-emoji``), a bitmap font drawn at its one size (109 px) in colour and
  scaled to the text's size;
- other characters come from DejaVu Sans (Latin, Greek, Cyrillic, Arabic, Hebrew, ...) or, when it has no
  glyph for them, WenQuanYi Micro Hei (``fonts-wqy-microhei``: Chinese, Japanese kana, Korean Hangul).

Both font packages are installed by the project's own files (``make fonts``, .ci/run). A font that is
missing degrades to the next one (logged once): the card still renders, with boxes for what nothing covers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cache

import emoji
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

TEXT_FONTS = (
    "DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
EMOJI_FONTS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",)
EMOJI_NATIVE_SIZE = 109  # Noto Color Emoji is a bitmap font with this one size


def _first(paths: tuple[str, ...], size: int) -> ImageFont.FreeTypeFont | None:
    for path in paths:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return None


@cache
def text_font(size: int) -> Font:
    """DejaVu Sans at ``size`` px (Pillow's own font when DejaVu is missing)."""
    return _first(TEXT_FONTS, size) or ImageFont.load_default(size=size)


@cache
def cjk_font(size: int) -> ImageFont.FreeTypeFont | None:
    found = _first(CJK_FONTS, size)
    if found is None and size == 40:
        log.warning("no CJK font (install fonts-wqy-microhei: make fonts): CJK names draw as boxes")
    return found


@cache
def emoji_font() -> ImageFont.FreeTypeFont | None:
    found = _first(EMOJI_FONTS, EMOJI_NATIVE_SIZE)
    if found is None:
        log.warning("no emoji font (install fonts-noto-color-emoji: make fonts): emoji draw as text")
    return found


def _drawn(font: ImageFont.FreeTypeFont, char: str) -> bytes:
    size = int(font.size) * 2
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, fill=255)
    return canvas.tobytes()


@cache
def _notdef(font: ImageFont.FreeTypeFont) -> bytes:
    return _drawn(font, "\U0010fffd")  # a private-use code point no font draws: the .notdef box


@cache
def has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    """Whether ``font`` draws ``char`` with a glyph of its own (not its .notdef box)."""
    if char.isspace():
        return True
    return _drawn(font, char) != _notdef(font)


def pieces(text: str, size: int) -> Iterator[tuple[str, Font | None]]:
    """``text`` cut into (piece, font) runs; font None marks one emoji (drawn from the emoji font)."""
    base = text_font(size)
    cjk = cjk_font(size)
    emojis = emoji_font()
    spans = {e["match_start"]: e["match_end"] for e in emoji.emoji_list(text)} if emojis else {}
    run, run_font, i = "", None, 0
    while i < len(text):
        if i in spans:
            if run:
                yield run, run_font
                run = ""
            yield text[i : spans[i]], None
            i = spans[i]
            continue
        char = text[i]
        font: Font = base
        if isinstance(base, ImageFont.FreeTypeFont) and cjk is not None and not has_glyph(base, char):
            font = cjk
        if run and font is not run_font:
            yield run, run_font
            run = ""
        run, run_font = run + char, font
        i += 1
    if run:
        yield run, run_font


@cache
def _emoji_image(sequence: str, size: int) -> Image.Image | None:
    font = emoji_font()
    if font is None:
        return None
    canvas = Image.new("RGBA", (EMOJI_NATIVE_SIZE * 3, EMOJI_NATIVE_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), sequence, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    height = max(round(size * 1.05), 1)
    width = max(round(glyph.width * height / glyph.height), 1)
    return glyph.resize((width, height), Image.Resampling.LANCZOS)


def text_length(text: str, size: int) -> float:
    """The width of ``text`` at ``size`` px, as :func:`draw_text` draws it."""
    total = 0.0
    for piece, font in pieces(text, size):
        if font is None:
            image = _emoji_image(piece, size)
            total += (image.width + 2) if image is not None else 0
        else:
            total += font.getlength(piece)
    return total


def fit(text: str, size: int, width: float) -> str:
    """``text``, cut with "…" so that it fits ``width`` px (whole emoji and characters only)."""
    if text_length(text, size) <= width:
        return text
    cuts = [p for p, _ in pieces(text, size)]
    out = ""
    for piece in cuts:
        units = [piece] if len(emoji.emoji_list(piece)) else list(piece)
        for unit in units:
            if text_length(out + unit + "…", size) > width:
                return out + "…"
            out += unit
    return out + "…"


def draw_text(
    image: Image.Image, xy: tuple[float, float], text: str, size: int, fill: tuple[int, int, int]
) -> float:
    """Draw ``text`` with its left end at x and its baseline at y; returns the x where it ends."""
    draw = ImageDraw.Draw(image)
    x, y = xy
    base = text_font(size)
    ascent = base.getmetrics()[0] if isinstance(base, ImageFont.FreeTypeFont) else size
    for piece, font in pieces(text, size):
        if font is None:
            glyph = _emoji_image(piece, size)
            if glyph is not None:
                image.alpha_composite(glyph, (round(x + 1), round(y - ascent * 0.95)))
                x += glyph.width + 2
            continue
        draw.text((x, y), piece, font=font, fill=fill, anchor="ls")
        x += font.getlength(piece)
    return x


__all__ = ["draw_text", "fit", "has_glyph", "pieces", "text_font", "text_length"]
