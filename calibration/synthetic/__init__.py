"""Synthetic ground truth for calibration: a studio rig, a hand-held board take, rendered frames.

- :func:`make_studio_rig` - a seeded ring of cameras with realistic intrinsics and lenses;
- :func:`board_trajectory` - smooth board motion ``t -> (R, t)`` (board-to-world, metres);
- :class:`CameraRenderer`, :func:`render_board_image` - ray-grid renderer (antialiased, motion
  blur, noise, vignetting, textured background);
- :func:`synthesize` (frames in memory) and :func:`write_synthetic_session` (videos or PNG
  folders + ``board.toml``, ``truth_rig.toml``, ``truth.json``).
"""

from .render import BoardTexture, CameraRays, CameraRenderer, FrameInfo, make_board_texture, render_board_image
from .scene import distortion_is_valid, look_at, make_studio_rig
from .trajectory import BoardTrajectory, board_trajectory
from .writer import (RenderSettings, SyntheticSession, default_board, frame_times, load_truth, render_take,
                     synthesize, truth_observations, write_synthetic_session)

__all__ = [
    "BoardTexture", "BoardTrajectory", "CameraRays", "CameraRenderer", "FrameInfo", "RenderSettings",
    "SyntheticSession", "board_trajectory", "default_board", "distortion_is_valid", "frame_times", "load_truth",
    "look_at", "make_board_texture", "make_studio_rig", "render_board_image", "render_take", "synthesize",
    "truth_observations", "write_synthetic_session",
]
