"""Styles: WCAG contrast, presets ≥ 7:1, settings → style, live preview overrides."""

import pytest

from app.core.settings import DictStore, Settings
from app.core.styles import (PRESETS, CaptionStyle, apply_preset, blend_over, contrast_ratio,
                             matching_preset, preset_values, relative_luminance, style_from_settings,
                             style_from_values)


def test_contrast_ratio_known_values():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    # WCAG reference example: #777777 on white is just under 4.5:1.
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#ffff00", "#000000") == pytest.approx(19.56, abs=0.01)
    assert relative_luminance("#ff0000") == pytest.approx(0.2126)


def test_blend_over():
    assert blend_over("#000000", 75, "#ffffff") == "#404040"
    assert blend_over("#000000", 100, "#ffffff") == "#000000"
    assert blend_over("#000000", 0, "#123456") == "#123456"


@pytest.mark.parametrize("name", ["white_on_black", "yellow_on_black", "high_contrast"])
def test_presets_keep_7_to_1_even_over_a_white_desktop(name):
    style = style_from_values(preset_values(name))
    assert contrast_ratio(style.text_color, style.background_color) >= 7
    assert style.worst_case_contrast() >= 7
    # The dimmer live partial must stay readable too (WCAG AA large text needs 3:1; we want 4.5),
    # also where the translucent background lies over a white page.
    assert contrast_ratio(style.partial_color, style.background_color) >= 4.5
    assert style.worst_case_contrast(style.partial_color) >= 4.5


def test_low_opacity_custom_style_has_poor_worst_case():
    style = CaptionStyle(text_color="#ffffff", background_color="#000000", background_opacity=10)
    assert style.worst_case_contrast() < 3


def test_high_contrast_preset_is_opaque_and_bold():
    style = style_from_values(preset_values("high_contrast"))
    assert style.background_opacity == 100 and style.background_alpha == 255
    assert style.bold


def test_partial_colour_is_visibly_different():
    style = CaptionStyle()
    assert style.partial_color != style.text_color
    assert contrast_ratio(style.partial_color, style.text_color) > 1.5


def test_effect_colour_opposes_text():
    assert CaptionStyle(text_color="#ffffff").effect_color == "#000000"
    assert CaptionStyle(text_color="#101010").effect_color == "#ffffff"


def test_style_from_settings_and_presets():
    settings = Settings(DictStore())
    apply_preset(settings, "yellow_on_black")
    settings.set("appearance/font_size", 48)
    style = style_from_settings(settings)
    assert style.text_color == "#ffff00"
    assert style.font_size == 48
    assert settings.get("appearance/preset") == "yellow_on_black"


def test_ini_strings_are_coerced():
    store = DictStore({"appearance/font_size": "64", "appearance/background_opacity": "40",
                       "appearance/text_color": "#FFAA00"})
    style = style_from_settings(Settings(store))
    assert style.font_size == 64 and style.background_opacity == 40 and style.text_color == "#ffaa00"


def test_preview_overrides_and_bad_override_ignored():
    settings = Settings(DictStore())
    style = style_from_settings(settings, {"appearance/font_size": 90, "appearance/text_color": "nope",
                                           "unrelated/key": 1})
    assert style.font_size == 90
    assert style.text_color == "#ffffff"


def test_out_of_range_font_size_falls_back():
    settings = Settings(DictStore({"appearance/font_size": "500"}))
    assert style_from_settings(settings).font_size == 28
    with pytest.raises(ValueError):
        style_from_values({"appearance/font_size": 10})


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown style preset"):
        preset_values("neon")


def test_matching_preset():
    assert matching_preset(PRESETS["yellow_on_black"]) == "yellow_on_black"
    assert matching_preset({**PRESETS["yellow_on_black"], "appearance/text_color": "#00ff00"}) == "custom"


# ---- speaker colours ---------------------------------------------------------------------------
from app.core.styles import (MIN_SPEAKER_CONTRAST, SPEAKER_PALETTE, speaker_color, speaker_colorer,
                             worst_contrast)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_speaker_colour_keeps_7_to_1_on_every_preset(preset):
    style = style_from_values({"appearance/preset": preset, **PRESETS[preset]})
    for color in SPEAKER_PALETTE:
        # computed (WCAG): against the background blended over white and over black desktops
        assert worst_contrast(color, style) >= MIN_SPEAKER_CONTRAST, (preset, color)
    for key in "ABCDEFGHIJ":
        assert speaker_color(style, key) in SPEAKER_PALETTE     # no adjustment needed


def test_speakers_get_distinct_colours_and_you_keeps_the_text_colour():
    style = style_from_values({})
    colors = [speaker_color(style, k) for k in "ABCDEFGH"]
    assert len(set(colors)) == 8
    assert speaker_color(style, "You") == style.text_color and speaker_color(style, None) == style.text_color
    assert speaker_color(style, "Dana") == speaker_color(style, "Dana")
    assert speaker_colorer(style)("B") == colors[1]


@pytest.mark.parametrize("bg,opacity", [("#ffffff", 100), ("#f5f0d0", 90), ("#3050a0", 100)])
def test_custom_backgrounds_get_readable_speaker_colours(bg, opacity):
    text = "#000000" if bg != "#3050a0" else "#ffffff"
    style = style_from_values({"appearance/text_color": text, "appearance/background_color": bg,
                               "appearance/background_opacity": opacity})
    for key in "ABCDEFGH":
        color = speaker_color(style, key)
        assert worst_contrast(color, style) >= min(MIN_SPEAKER_CONTRAST, worst_contrast(text, style)), (key, color)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_translation_style_is_another_colour_at_seven_to_one_on_every_preset(preset):
    from app.core.styles import (MIN_TRANSLATION_CONTRAST, contrast_ratio, preset_values,
                                 style_from_values, worst_contrast)
    style = style_from_values(preset_values(preset))
    assert worst_contrast(style.translation_color, style) >= MIN_TRANSLATION_CONTRAST >= 7.0
    assert style.translation_color != style.text_color
    assert contrast_ratio(style.translation_color, style.text_color) > 1.05


@pytest.mark.parametrize("bg, opacity", [("#ffffff", 100), ("#ffffcc", 90), ("#202060", 70)])
def test_translation_style_stays_readable_on_custom_backgrounds(bg, opacity):
    from app.core.styles import CaptionStyle, worst_contrast
    text = "#000000" if bg.startswith("#ff") else "#ffffff"
    style = CaptionStyle(text_color=text, background_color=bg, background_opacity=opacity)
    assert worst_contrast(style.translation_color, style) >= min(
        7.0, worst_contrast(style.text_color, style))
