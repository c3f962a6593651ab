"""Overlay and dialog geometry, without Qt."""

from app.core.placement import (clamp_rect, dock_rect, intersects, parse_geometry, pick_screen,
                                place_clear_of)

SCREEN = (0, 0, 1920, 1080)


def test_dock_rect_shrinks_to_the_screen_and_centres():
    assert dock_rect((800, 150), SCREEN, "bottom") == (560, 1080 - 150 - 48, 800, 150)
    assert dock_rect((4000, 150), (100, 0, 1000, 800), "top") == (100, 48, 1000, 150)


def test_pick_screen_by_name_then_by_centre_else_none():
    screens = [("left", (0, 0, 1920, 1080)), ("right", (1920, 0, 1280, 1024))]
    assert pick_screen("right", None, screens) == 1
    assert pick_screen("gone", (2000, 100, 400, 100), screens) == 1
    assert pick_screen("", (100, 100, 400, 100), screens) == 0
    assert pick_screen("gone", (9000, 9000, 10, 10), screens) is None
    assert pick_screen("", None, screens) is None


def test_dialog_centred_when_the_overlay_is_elsewhere():
    overlay = (160, 900, 1600, 130)
    assert place_clear_of((700, 500), overlay, SCREEN) == (610, 290, 700, 500)


def test_dialog_steps_above_a_large_bottom_overlay():
    # 48 pt, four lines: the overlay covers the lower half, where a centred dialog's buttons would be.
    overlay = (160, 600, 1600, 432)
    rect = place_clear_of((760, 560), overlay, SCREEN)
    assert not intersects(rect, overlay)
    assert rect[1] + rect[3] <= overlay[1]


def test_dialog_goes_below_a_top_overlay_and_keeps_the_users_spot_when_clear():
    overlay = (160, 48, 1600, 400)
    rect = place_clear_of((700, 500), overlay, SCREEN, preferred=(300, 200, 700, 500))
    assert not intersects(rect, overlay) and rect[1] >= 448
    assert rect[0] == 300   # moved only as far as needed
    assert place_clear_of((700, 500), overlay, SCREEN, preferred=(1000, 520, 700, 500)) == (1000, 520, 700, 500)


def test_dialog_beside_a_tall_overlay():
    overlay = (0, 0, 900, 1080)
    rect = place_clear_of((700, 600), overlay, SCREEN)
    assert not intersects(rect, overlay) and rect[0] >= 900


def test_no_clear_spot_keeps_the_bottom_edge_above_the_overlay_when_possible():
    overlay = (0, 300, 1920, 780)    # almost the whole screen
    rect = place_clear_of((900, 700), overlay, SCREEN)
    assert rect[1] == 0 and rect[3] == 700  # as high as it goes: buttons nearest to uncovered
    # A dialog bigger than the screen is shrunk onto it.
    assert place_clear_of((5000, 5000), None, SCREEN) == SCREEN


def test_parse_and_clamp_unchanged():
    assert parse_geometry("1,2,3,4") == (1, 2, 3, 4)
    assert clamp_rect((5000, 5000, 800, 150), SCREEN) == (1120, 930, 800, 150)


def test_a_window_that_may_shrink_fills_the_free_band():
    screen = (0, 0, 1280, 800)
    overlay = (128, 447, 1024, 304)          # a three-line 48 pt overlay
    rect = place_clear_of((640, 480), overlay, screen, min_height=250)
    assert not intersects(rect, overlay) and 250 <= rect[3] < 480
    assert rect[1] + rect[3] <= overlay[1]
    # Not below its minimum: then it stays full size (and the caller lifts it above the overlay).
    assert place_clear_of((640, 480), overlay, screen, min_height=440)[3] == 480
