"""Frame sources: video files and image folders, and the errors that name the bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.capture.sources import FrameSource, SourceError
from posestudio.core.errors import InputError, PoseStudioError


def _folder(path: Path, n: int, size: tuple[int, int] = (64, 48)) -> Path:
    path.mkdir()
    for i in range(n):
        cv2.imwrite(str(path / f"{i:04d}.png"), np.full((size[1], size[0]), 10 * i, np.uint8))
    return path


def test_an_image_folder_is_read_in_name_order(tmp_path: Path) -> None:
    src = FrameSource.open(_folder(tmp_path / "cam3", 3))
    assert src.name == "cam3" and not src.is_video and src.fps() is None
    assert src.frame_count() == 3 and src.image_size() == (64, 48)
    assert [(i, int(img[0, 0])) for i, img in src.frames()] == [(0, 0), (1, 10), (2, 20)]


def test_a_video_is_read_frame_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "cam1.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    src = FrameSource.open(path)
    assert src.name == "cam1" and src.is_video and src.fps() == pytest.approx(25.0)
    assert src.frame_count() == 4 and src.image_size() == (64, 48)
    assert all(img.shape == (48, 64) for _, img in src.frames(gray=True))


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("empty_folder", "folder holds no images"),
    ("not_a_video", "cannot decode this file as video"),
])
def test_unusable_sources_are_named(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / "cam"
    if case == "empty_folder":
        path.mkdir()
    elif case == "not_a_video":
        path = tmp_path / "cam.mp4"
        path.write_bytes(b"this is not a video")
    with pytest.raises(SourceError) as info:
        FrameSource.open(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert isinstance(info.value, InputError) and isinstance(info.value, PoseStudioError)


def test_an_undecodable_image_is_named_when_read(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "cam", 2)
    (folder / "0001.png").write_bytes(b"broken")
    frames = FrameSource.open(folder).frames()
    next(frames)
    with pytest.raises(SourceError, match=r"0001\.png: cannot decode image"):
        next(frames)
