"""Frame sources for offline work: a video file or a folder of images, read frame by frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.errors import InputError

from .luma import LumaDecodeError, luma_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class SourceError(InputError):
    """A frame source that cannot be opened or read (message names the path)."""


@dataclass
class FrameSource:
    """A recorded camera: a video file or an image folder (files sorted by name).

    Attributes:
        path: the video file or folder.
        name: camera name (the file or folder stem).
    """

    path: Path
    name: str

    @classmethod
    def open(cls, path: str | Path) -> "FrameSource":
        """Check that ``path`` is a readable video or a folder with images."""
        path = Path(path)
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        src = cls(path, path.stem if path.is_file() else path.name)
        if path.is_dir():
            if not src._images():
                raise SourceError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        else:
            cap = cv2.VideoCapture(str(path))
            ok = cap.isOpened() and cap.read()[0]
            cap.release()
            if not ok:
                raise SourceError(f"{path}: cannot decode this file as video")
        return src

    def _images(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    @property
    def is_video(self) -> bool:
        return self.path.is_file()

    def frame_count(self) -> int:
        """Number of frames (decoded count for videos, so container metadata cannot mislead)."""
        if not self.is_video:
            return len(self._images())
        cap = cv2.VideoCapture(str(self.path))
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        return n

    def expected_frame_count(self) -> int | None:
        """Frame count from the container's metadata without decoding (None when it does not say).

        For progress display only: containers can be wrong; :meth:`frame_count` decodes.
        """
        if not self.is_video:
            return len(self._images())
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n if n > 0 else None

    def fps(self) -> float | None:
        """Nominal frame rate of a video (None for image folders or when unknown)."""
        if not self.is_video:
            return None
        cap = cv2.VideoCapture(str(self.path))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        return float(fps) if fps and fps > 0 else None

    def frames(self, gray: bool = True) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        """Yield ``(index, image)``; images are ``(H, W)`` uint8 when ``gray`` else BGR ``(H, W, 3)``.

        Grey video frames come from the luma plane (:mod:`.luma`), colour ones from OpenCV.

        An image file that cannot be decoded raises :class:`SourceError` naming it.
        """
        if self.is_video and gray:
            # The luma plane: the same grey image (within a grey level, up to a constant offset on
            # some cameras' colour conversion) at less than half the decoding cost.
            try:
                yield from enumerate(luma_frames(self.path))
            except LumaDecodeError as exc:
                raise SourceError(f"{self.path}: cannot decode this file as video ({exc})") from None
            return
        if self.is_video:
            cap = cv2.VideoCapture(str(self.path))
            i = 0
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    yield i, frame
                    i += 1
            finally:
                cap.release()
            return
        for i, p in enumerate(self._images()):
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
            if img is None:
                raise SourceError(f"{p}: cannot decode image")
            yield i, img

    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` of the first frame."""
        for _, img in self.frames(gray=True):
            return img.shape[1], img.shape[0]
        raise SourceError(f"{self.path}: no frames")
