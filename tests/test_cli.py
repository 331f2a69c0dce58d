"""The ``posestudio`` command: help for every subcommand, and clear errors instead of tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")
BOARD_TOML = """[board]
type = "charuco"
squares_x = 5
squares_y = 4
square_length = 0.05
marker_length = 0.035
dictionary = "DICT_4X4_50"
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([POSESTUDIO, *args], capture_output=True, text=True, timeout=300)


def test_top_level_help_lists_the_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("board", "calibrate", "demo", "rig", "synth"):
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", [["board"], ["calibrate"], ["demo"], ["rig", "convert"], ["rig", "check"],
                                 ["synth", "rig"]])
def test_every_subcommand_has_help_with_an_example(cmd):
    out = run(*cmd, "--help")
    assert out.returncode == 0, out.stderr
    assert "example" in out.stdout.lower()


def _image_folder(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    img = np.full((480, 640), 255, np.uint8)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), img)
    return folder


def _no_traceback(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr


def test_unreadable_video_is_named(tmp_path):
    (tmp_path / "board.toml").write_text(BOARD_TOML)
    bad = tmp_path / "cam1.mp4"
    bad.write_bytes(b"this is not a video")
    good = _image_folder(tmp_path / "cam2", 3)
    out = run("calibrate", "--board", str(tmp_path / "board.toml"), "--out", str(tmp_path / "rig.toml"),
              str(bad), str(good))
    _no_traceback(out)
    assert "cam1.mp4: cannot decode this file as video" in out.stderr
    assert not (tmp_path / "rig.toml").exists()


def test_unequal_frame_counts_are_listed(tmp_path):
    (tmp_path / "board.toml").write_text(BOARD_TOML)
    a, b = _image_folder(tmp_path / "left", 4), _image_folder(tmp_path / "right", 6)
    out = run("calibrate", "--board", str(tmp_path / "board.toml"), "--out", str(tmp_path / "rig.toml"), str(a),
              str(b))
    _no_traceback(out)
    assert "different frame counts (left: 4, right: 6)" in out.stderr


def test_board_file_errors_name_the_file_and_field(tmp_path):
    board = tmp_path / "board.toml"
    board.write_text(BOARD_TOML.replace("DICT_4X4_50", "DICT_4X4_5O"))
    folder = _image_folder(tmp_path / "cam", 1)
    out = run("calibrate", "--board", str(board), "--out", str(tmp_path / "rig.toml"), str(folder))
    _no_traceback(out)
    assert "board.toml" in out.stderr and "unknown ArUco dictionary 'DICT_4X4_5O'" in out.stderr
    out = run("calibrate", "--board", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "rig.toml"),
              str(folder))
    _no_traceback(out)
    assert "missing.toml: board file not found" in out.stderr


def test_camera_without_board_is_named(tmp_path):
    (tmp_path / "board.toml").write_text(BOARD_TOML)
    a, b = _image_folder(tmp_path / "north", 2), _image_folder(tmp_path / "south", 2)
    out = run("calibrate", "--board", str(tmp_path / "board.toml"), "--out", str(tmp_path / "rig.toml"), str(a),
              str(b))
    _no_traceback(out)
    assert "camera north: no board found in any of its 2 frames" in out.stderr
    assert "camera south: no board found" in out.stderr
