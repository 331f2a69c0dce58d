"""Grey frames from the luma plane match OpenCV's BGR-then-grey decoding, for the formats cameras record."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from posestudio.capture.luma import LumaDecodeError, luma_frames, stretch_limited_range
from posestudio.capture.sources import FrameSource, SourceError


def _scene(k: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """A coloured BGR test frame ``(H, W, 3)``: gradients, a moving square, saturated patches."""
    w, h = size
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y + 8 * k) % 256)], axis=-1).astype(np.uint8)
    img[40:90, 20 + 10 * k:70 + 10 * k] = (0, 0, 255)
    img[150:200, 200:260] = (255, 255, 255)
    return img


def _opencv_grey(path: Path) -> list[np.ndarray]:
    """OpenCV's decoding: BGR frames (:class:`FrameSource`'s colour path), then grey."""
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) for _, frame in FrameSource.open(path).frames(gray=False)]


def _assert_close(ours: np.ndarray, theirs: np.ndarray, tolerance: int) -> None:
    """Within ``tolerance`` grey levels but at saturated colour edges, where OpenCV's BGR clips the
    out-of-gamut colours chroma subsampling makes (the luma does not): there up to 35 levels."""
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= tolerance and diff.max() <= 40


def _write_pyav(path: Path, codec: str, pix_fmt: str, n: int = 6) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, pix_fmt
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(_scene(k), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.mark.parametrize("width", [1, 7, 33, 1281])
def test_limited_range_stretch_is_exact_for_every_level(width: int) -> None:
    """Every luma level 0-255 maps to round((y - 16) * 255 / 219) clipped to 0-255, in strided
    views (the decoder's planes are padded) and at widths the vectorised loop does not divide."""
    levels = np.arange(256, dtype=np.uint8)
    expected = np.clip(np.round((levels.astype(float) - 16) * 255 / 219), 0, 255).astype(np.uint8)
    plane = np.zeros((256, width + 13), np.uint8)
    plane[:, :width] = levels[:, None]
    out = stretch_limited_range(plane[:, :width])
    assert out.shape == (256, width) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.repeat(expected[:, None], width, axis=1))


def test_mpeg4_limited_range_matches_opencv(tmp_path: Path) -> None:
    path = tmp_path / "cam.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    for k in range(8):
        writer.write(_scene(k))
    writer.release()
    ours, theirs = list(luma_frames(path)), _opencv_grey(path)
    assert len(ours) == len(theirs) == 8
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape == (240, 320) and a.dtype == np.uint8 and a.flags.c_contiguous
        _assert_close(a, b, tolerance=2)
    # FrameSource hands out exactly these frames with their indices
    assert [i for i, _ in FrameSource.open(path).frames(gray=True)] == list(range(8))


@pytest.mark.parametrize(("codec", "pix_fmt", "tolerance"), [
    ("mjpeg", "yuvj420p", 3),   # full-range (JPEG) luma: used as it is
    ("ffv1", "bgr0", 2),        # not a YUV format: FFmpeg's own conversion to grey
])
def test_other_ranges_and_formats_match_opencv(tmp_path: Path, codec: str, pix_fmt: str, tolerance: int) -> None:
    path = tmp_path / "cam.mkv"
    _write_pyav(path, codec, pix_fmt)
    ours, theirs = list(luma_frames(path)), _opencv_grey(path)
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        _assert_close(a, b, tolerance)


def test_a_file_that_is_not_a_video_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(LumaDecodeError):
        list(luma_frames(bad))
    with pytest.raises(SourceError, match="broken.mp4"):
        FrameSource.open(bad)
