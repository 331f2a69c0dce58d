"""Shared fixtures of the calibration tests: the studio board and the real data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from posestudio.calibration.board import BoardSpec

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def studio_board() -> BoardSpec:
    return BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50")
