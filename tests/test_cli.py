"""The ``posestudio`` command: help for every subcommand, one clear line for user errors, a traceback for bugs."""

from __future__ import annotations

import re
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
    for cmd in ("board", "calibrate", "demo", "rig", "synth", "export", "publish", "view", "node", "keys", "serve", "dataset"):
        assert cmd in out.stdout


@pytest.mark.parametrize("cmd", [["board"], ["calibrate"], ["demo"], ["rig", "convert"], ["rig", "check"],
                                 ["synth", "rig"], ["export"], ["publish"], ["view"]])
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
    # Both cameras named in one line for the rig, not one block per camera.
    assert "cameras north, south: no board found in any of their frames (2 of 2 cameras, 2 each)" in out.stderr


# --------------------------------------------------------------------------- user errors and bugs
def _one_line_error(out: subprocess.CompletedProcess, command: str) -> str:
    """The single stderr line of a user error (exit status 2, no traceback)."""
    _no_traceback(out)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"posestudio {command}: error: "), lines[0]
    return lines[0]


def test_calibrate_with_a_missing_video_is_one_line(tmp_path):
    (tmp_path / "board.toml").write_text(BOARD_TOML)
    line = _one_line_error(run("calibrate", "--board", str(tmp_path / "board.toml"), "--out",
                               str(tmp_path / "rig.toml"), str(tmp_path / "cam1.mp4")), "calibrate")
    assert "cam1.mp4: no such file or folder" in line


def test_calibrate_with_a_malformed_board_file_is_one_line(tmp_path):
    (tmp_path / "board.toml").write_text("[board]\ntype = charuco\n")
    folder = _image_folder(tmp_path / "cam", 1)
    line = _one_line_error(run("calibrate", "--board", str(tmp_path / "board.toml"), "--out",
                               str(tmp_path / "rig.toml"), str(folder)), "calibrate")
    assert "board.toml: not a valid TOML file" in line


def test_rig_convert_of_an_unknown_format_is_one_line(tmp_path):
    (tmp_path / "mystery.toml").write_text("a = 1\n")
    line = _one_line_error(run("rig", "convert", str(tmp_path / "mystery.toml"), str(tmp_path / "out.toml"),
                               "--to", "anipose"), "rig convert")
    assert "mystery.toml: TOML file of no known rig format" in line


def test_reconstruct_with_a_missing_rig_is_one_line(tmp_path):
    line = _one_line_error(run("reconstruct", "--calibration", str(tmp_path / "nope.toml"), "--keypoints2d",
                               str(tmp_path / "k.npz"), "--out", str(tmp_path / "out")), "reconstruct")
    assert "nope.toml" in line and "not found" in line


def test_train_with_a_bad_checkpoint_is_one_line(tmp_path):
    from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
    from posestudio.models.keypoints import H36M17
    from posestudio.synthetic import make_studio_rig
    from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
    from posestudio.synthetic.body_motion import walking_body

    rig = make_studio_rig(3, (1280, 720), seed=1)
    rig.save(tmp_path / "rig.toml")
    views = simulate_detections(rig, walking_body(20, start=(0.0, 0.0)), DetectorErrors(seed=0))
    write_keypoints2d(tmp_path / "k.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    line = _one_line_error(run("train", "factorization", "--out", str(tmp_path / "c.pt"), "--epochs", "1",
                               "--init", str(tmp_path / "bad.pt"), "--session", str(tmp_path / "rig.toml"),
                               str(tmp_path / "k.npz")), "train factorization")
    assert "bad.pt: not a factorization checkpoint" in line
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("options, named", [(["--epochs", "0"], "epochs = 0"), (["--batch-size", "0"], "batch_size = 0"),
                                             (["--views", "1"], "n_views = 1")])
def test_train_with_a_setting_out_of_range_is_one_line(tmp_path, options, named):
    line = _one_line_error(run("train", "factorization", "--out", str(tmp_path / "c.pt"), *options),
                           "train factorization")
    assert named in line and not (tmp_path / "c.pt").exists()


def test_train_on_a_folder_without_motion_capture_is_one_line(tmp_path):
    line = _one_line_error(run("train", "factorization", "--out", str(tmp_path / "c.pt"), "--data", str(tmp_path)),
                           "train factorization")
    assert f"{tmp_path}: no .bvh files" in line


def test_a_rig_file_with_a_bad_metadata_field_is_named(tmp_path):
    from posestudio.synthetic import make_studio_rig

    rig_path = tmp_path / "rig.toml"
    rig = make_studio_rig(2, (640, 480), seed=1)
    rig.metadata.clear()
    rig.save(rig_path)
    rig_path.write_text("metadata = 3" + chr(10) + rig_path.read_text())         # a value where a table belongs
    line = _one_line_error(run("rig", "convert", str(rig_path), str(tmp_path / "out.toml"), "--to", "anipose"),
                           "rig convert")
    assert "rig.toml" in line and "'metadata' must be a table" in line


def test_an_unwritable_output_is_one_line(tmp_path):
    from posestudio.synthetic import make_studio_rig

    make_studio_rig(2, (640, 480), seed=0).save(tmp_path / "rig.toml")
    (tmp_path / "a_file").write_text("not a folder")
    line = _one_line_error(run("rig", "convert", str(tmp_path / "rig.toml"), str(tmp_path / "a_file" / "out.toml"),
                               "--to", "anipose"), "rig convert")
    assert "a_file" in line


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), ValueError("operands could not be broadcast"),
                                 KeyError("cam9"), FileNotFoundError("no .bvh files")])
def test_an_internal_error_keeps_its_traceback_and_asks_for_a_report(tmp_path, monkeypatch, capsys, bug):
    import posestudio.commands.board as board_command
    from posestudio import __version__
    from posestudio.cli import main

    def broken(path):
        raise bug

    monkeypatch.setattr(board_command, "load_board", broken)
    assert main(["board", str(tmp_path / "board.toml"), "--out", str(tmp_path / "board.png")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and type(bug).__name__ in err
    assert "in run" in err  # the frames of the failing code are kept
    assert f"posestudio board: internal error: this is a bug in PoseStudio {__version__}" in err
    assert "report it" in err


def test_help_texts_name_only_files_that_exist(capsys):
    """Every repository path a --help cites (studio_configs/..., models/..., docs/...) exists."""
    import argparse

    from posestudio.cli import build_parser, main

    repo = Path(__file__).resolve().parents[1]
    # the repository's own folders (not ones a run creates, such as out/)
    folders = {"benchmarks", "calibration", "capture", "docs", "models", "posestudio", "reconstruction",
               "studio_configs", "tests", "viewer"}
    texts = []

    def collect(parser: argparse.ArgumentParser) -> None:
        texts.append(parser.format_help())
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    collect(sub)

    collect(build_parser())
    with pytest.raises(SystemExit):  # the trainer's own options are built when it runs
        main(["train", "factorization", "--help"])
    texts.append(capsys.readouterr().out)
    cited = {m for text in texts for m in re.findall(r"(?<![\w./-])([\w-]+/[\w./-]*\w)", text)
             if m.split("/")[0] in folders}
    assert "studio_configs/board_charuco_a1.toml" in cited
    missing = sorted(m for m in cited if not (repo / m).exists())
    assert not missing, f"--help texts cite files that do not exist: {', '.join(missing)}"
