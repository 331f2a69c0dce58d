"""Synthetic ground truth, the one place tests, benchmarks and the demo get it from.

Rigs and boards (calibration):

- :func:`make_studio_rig` - a seeded ring of cameras with realistic intrinsics and lenses
  (:func:`~.studio_rig.ring_rig`: a small ring for solver tests);
- :func:`board_trajectory` - smooth board motion ``t -> (R, t)`` (board-to-world, metres);
- :class:`CameraRenderer`, :func:`render_board_image` - ray-grid renderer (antialiased, motion
  blur, noise, vignetting, textured background);
- :func:`synthesize` (frames in memory) and :func:`write_synthetic_session` (videos or PNG
  folders + ``board.toml``, ``truth_rig.toml``, ``truth.json``);
- :mod:`.board_detections` - exact corner detections of a moving board (no rendering).

Bodies (reconstruction):

- :mod:`.body_motion` - a walking 17-joint body (metres, Z up);
- :mod:`.body_detections` - its 2D keypoints in a rig with detector-like errors (noise, misses,
  outliers, a bystander).
"""

from .board_render import BoardTexture, CameraRays, CameraRenderer, FrameInfo, make_board_texture, render_board_image
from .board_session import (
                     RenderSettings,
                     SyntheticSession,
                     default_board,
                     frame_times,
                     load_truth,
                     render_take,
                     synthesize,
                     truth_observations,
                     write_synthetic_session,
)
from .board_trajectory import BoardTrajectory, board_trajectory
from .studio_rig import distortion_is_valid, look_at, make_studio_rig

__all__ = [
    "BoardTexture", "BoardTrajectory", "CameraRays", "CameraRenderer", "FrameInfo", "RenderSettings",
    "SyntheticSession", "board_trajectory", "default_board", "distortion_is_valid", "frame_times", "load_truth",
    "look_at", "make_board_texture", "make_studio_rig", "render_board_image", "render_take", "synthesize",
    "truth_observations", "write_synthetic_session",
]
