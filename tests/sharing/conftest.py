from __future__ import annotations

import pytest

from tests.fixtures.caption_targets import CaptionTargets


@pytest.fixture
def targets():
    stand_in = CaptionTargets(zoom_start_seq=41).start()
    yield stand_in
    stand_in.stop()
