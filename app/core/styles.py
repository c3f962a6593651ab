"""Caption appearance: values from the settings, presets, and WCAG contrast. Pure Python.

Presets are checked against the worst case a translucent overlay meets: its background blended
over a *white* desktop. The readable presets keep ≥ 7:1 (WCAG AAA) for finished text and ≥ 4.5:1
for the dimmer live words even then; their 85 % background also masks the text of the window
underneath (at 75 % it still read through between caption words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from app.core.settings import PREF_BY_KEY, Settings

APPEARANCE_KEYS = ("appearance/font_family", "appearance/font_size", "appearance/text_color",
                   "appearance/background_color", "appearance/background_opacity",
                   "appearance/text_effect")

# Each preset sets colours, opacity and effect; font family and size stay the user's choice.
PRESETS: dict[str, dict[str, Any]] = {
    "white_on_black": {"appearance/text_color": "#ffffff", "appearance/background_color": "#000000",
                       "appearance/background_opacity": 85, "appearance/text_effect": "outline"},
    "yellow_on_black": {"appearance/text_color": "#ffff00", "appearance/background_color": "#000000",
                        "appearance/background_opacity": 85, "appearance/text_effect": "outline"},
    # Fully opaque, bold, no translucency at all: maximum contrast whatever is behind.
    "high_contrast": {"appearance/text_color": "#ffffff", "appearance/background_color": "#000000",
                      "appearance/background_opacity": 100, "appearance/text_effect": "outline"},
}
PRESET_LABELS = {"white_on_black": "White on black", "yellow_on_black": "Yellow on black",
                 "high_contrast": "High contrast", "custom": "Custom"}

MIN_PARTIAL_CONTRAST = 4.5
PARTIAL_MIX = 0.22          # how far the live partial's colour moves toward the background
LABEL_CHIP_MIX = 0.72       # the "Mic:" / "System:" chip: the text colour most of the way to the background
# Translations: the text colour tinted toward a light blue (and drawn in italics), so the two
# languages are told apart at a glance, yet kept at the finished text's 7:1.
TRANSLATION_TINT, TRANSLATION_MIX = "#7fd0ff", 0.5
MIN_TRANSLATION_CONTRAST = 7.0


def parse_hex(color: str) -> tuple[int, int, int]:
    text = color.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"{color!r} is not a #rrggbb colour")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = parse_hex(color)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio, 1.0 (none) … 21.0 (black/white)."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def mix(a: str, b: str, t: float) -> str:
    """``a`` moved ``t`` of the way toward ``b`` (0 = a, 1 = b)."""
    ra, rb = parse_hex(a), parse_hex(b)
    return to_hex(tuple(x + (y - x) * t for x, y in zip(ra, rb)))


def blend_over(color: str, opacity_pct: int, backdrop: str) -> str:
    """What a background of ``color`` at ``opacity_pct`` looks like over ``backdrop``."""
    return mix(backdrop, color, opacity_pct / 100)


@dataclass(frozen=True)
class CaptionStyle:
    font_family: str = ""
    font_size: int = 28
    text_color: str = "#ffffff"
    background_color: str = "#000000"
    background_opacity: int = 85          # percent; the text itself is always opaque
    text_effect: str = "outline"          # none | outline | shadow
    bold: bool = False

    @property
    def background_alpha(self) -> int:
        return round(self.background_opacity * 255 / 100)

    @property
    def partial_color(self) -> str:
        """The live (not yet final) text: visibly dimmer, still readable."""
        return mix(self.text_color, self.background_color, PARTIAL_MIX)

    @property
    def translation_color(self) -> str:
        """A translation under its original: another hue of the text colour, ≥ 7:1 (or the text
        colour itself on a custom style where no tint of it is readable enough)."""
        tinted = mix(self.text_color, TRANSLATION_TINT, TRANSLATION_MIX)
        return readable(tinted, self, MIN_TRANSLATION_CONTRAST)

    @property
    def label_color(self) -> str:
        """Source labels are full-contrast text on a chip: a label, not unfinished words."""
        return self.text_color

    @property
    def label_chip_color(self) -> str:
        return mix(self.text_color, self.background_color, LABEL_CHIP_MIX)

    @property
    def effect_color(self) -> str:
        """Outline/shadow colour: the opposite end of the luminance scale from the text."""
        return "#000000" if relative_luminance(self.text_color) > 0.3 else "#ffffff"

    @property
    def outline_width(self) -> float:
        return max(1.5, self.font_size / 14)

    def worst_case_contrast(self, color: str | None = None) -> float:
        """``color`` (default: the text) against the background blended over a white (or black)
        desktop, whichever is worse."""
        color = color or self.text_color
        return min(contrast_ratio(color, blend_over(self.background_color, self.background_opacity, backdrop))
                   for backdrop in ("#ffffff", "#000000"))


def style_from_values(values: Mapping[str, Any]) -> CaptionStyle:
    """Build a style from settings-keyed values (missing keys → defaults; invalid → ValueError)."""

    def get(key):
        pref = PREF_BY_KEY[key]
        return pref.coerce(values[key]) if key in values else pref.default

    preset = get("appearance/preset") if "appearance/preset" in values else "custom"
    return CaptionStyle(font_family=get("appearance/font_family"), font_size=get("appearance/font_size"),
                        text_color=get("appearance/text_color"),
                        background_color=get("appearance/background_color"),
                        background_opacity=get("appearance/background_opacity"),
                        text_effect=get("appearance/text_effect"),
                        bold=preset == "high_contrast")


def style_from_settings(settings: Settings, overrides: Mapping[str, Any] | None = None) -> CaptionStyle:
    """The saved style, with optional unsaved ``overrides`` (the settings dialog's live preview).

    A bad override value is ignored (the saved value stays) rather than breaking the overlay.
    """
    values: dict[str, Any] = {key: settings.get(key) for key in APPEARANCE_KEYS + ("appearance/preset",)}
    for key, value in (overrides or {}).items():
        if key in values:
            try:
                values[key] = PREF_BY_KEY[key].coerce(value)
            except (ValueError, TypeError):
                continue
    return style_from_values(values)


def preset_values(name: str) -> dict[str, Any]:
    """Settings values a preset sets (including the preset key itself)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown style preset {name!r}; choose one of {', '.join(PRESETS)}.")
    return {"appearance/preset": name, **PRESETS[name]}


def apply_preset(settings: Settings, name: str) -> None:
    for key, value in preset_values(name).items():
        settings.set(key, value)


def matching_preset(values: Mapping[str, Any]) -> str:
    """The preset these values equal, or "custom"."""
    for name, preset in PRESETS.items():
        if all(values.get(k) == v for k, v in preset.items()):
            return name
    return "custom"


# ---- speaker colours -------------------------------------------------------------------------
# Light, clearly different hues: on every preset's background (also when it is blended over a
# white desktop) each keeps ≥ 7:1. Speaker A, B, … take them in order; "You" keeps the text colour.
SPEAKER_PALETTE = ("#ffff66", "#8ae8ff", "#a6ff9e", "#ffc4ee", "#ffd199", "#dcd2ff", "#d8ff8a",
                   "#ffffff")
MIN_SPEAKER_CONTRAST = 7.0


def worst_background(style: CaptionStyle) -> list[str]:
    """The caption background as it can look: blended over a white and over a black desktop."""
    return [blend_over(style.background_color, style.background_opacity, backdrop)
            for backdrop in ("#ffffff", "#000000")]


def worst_contrast(color: str, style: CaptionStyle) -> float:
    return min(contrast_ratio(color, bg) for bg in worst_background(style))


def _palette_index(key: str) -> int:
    if len(key) == 1 and key.isalpha():
        return (ord(key.upper()) - ord("A")) % len(SPEAKER_PALETTE)
    return sum(key.encode("utf-8")) % len(SPEAKER_PALETTE)   # stable across runs, unlike hash()


def readable(color: str, style: CaptionStyle, minimum: float = MIN_SPEAKER_CONTRAST) -> str:
    """``color``, or the least change of it toward black or white that keeps ``minimum`` contrast
    on this style's background (a custom light background gets darker speaker colours); the
    style's own text colour when no shade of the hue is readable enough."""
    for step in range(0, 21):
        for target in ("#000000", "#ffffff"):
            candidate = mix(color, target, step / 20)
            if worst_contrast(candidate, style) >= minimum:
                return candidate
    return style.text_color


def speaker_color(style: CaptionStyle, key: str | None) -> str:
    """The text colour of a speaker (``key``: "A", "B", …, "You", or None = no speaker)."""
    if not key or key == "You":
        return style.text_color
    return readable(SPEAKER_PALETTE[_palette_index(key)], style)


def speaker_colorer(style: CaptionStyle):
    """A cached ``key → colour`` function for the caption model."""
    cache: dict[str | None, str] = {}

    def color(key: str | None) -> str:
        if key not in cache:
            cache[key] = speaker_color(style, key)
        return cache[key]

    return color
