"""The lifting checkpoint that ships: what it is, and that it lifts a body it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestudio.core.pose_metrics import mpjpe, mpjpe_absolute, p_mpjpe
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.lifting.data import MotionWindows
from posestudio.models.lifting.evaluation import evaluate, render_test_set
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT, Lifter, body_height
from posestudio.models.lifting.network import LiftingNet
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig


def _walk_seen_by_one_camera(fps: float = 60.0) -> tuple[np.ndarray, np.ndarray, object]:
    """A synthetic walk at 60 fps (never trained on, and not at the model's 30 fps) and one
    studio camera's exact 2D of it."""
    rig = make_studio_rig(4, seed=2, distortion="mild")
    body = walking_body(120, fps=fps, heading_deg=30.0, start=(-0.5, -0.3))
    pix = rig.project(body)[1]
    return body, np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1), rig[1]


def test_shipped_checkpoint_is_the_documented_model() -> None:
    ckpt = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=False)
    assert ckpt["format"] == "posestudio.lifting/1" and "optimizer" not in ckpt
    assert "posestudio train lifting" in ckpt["command"]
    assert ckpt["net_config"]["root_branch"] and ckpt["net_config"]["window"] == 9
    assert ckpt["train_config"]["pretrain_epochs"] == 20 and ckpt["train_config"]["epochs"] == 300
    assert DEFAULT_CHECKPOINT.stat().st_size < 5_000_000


def test_shipped_checkpoint_lifts_a_walk_it_never_saw_to_metres() -> None:
    body, kp, camera = _walk_seen_by_one_camera()
    view = Lifter.load(device="cpu").lift_camera(camera, kp, fps=60.0)
    assert view.lifted.all()
    assert mpjpe(view.world_points, body) < 0.100                              # root aligned, metres (81 mm)
    assert p_mpjpe(view.world_points, body) < 0.065                            # (52 mm)
    truth_height = float(np.median(body_height(body)))
    assert abs(view.height_m / truth_height - 1.0) < 0.12                     # its own scale, no height given (0.93)
    given = Lifter.load(device="cpu").lift_camera(camera, kp, fps=60.0, height_m=truth_height)
    assert mpjpe_absolute(given.world_points, body) < 0.20                    # placed in the room, metres (144 mm)
    torch.manual_seed(0)
    untrained = Lifter(LiftingNet(Lifter.load().config), device="cpu").lift_camera(camera, kp, fps=60.0)
    assert mpjpe(untrained.world_points, body) > 2 * mpjpe(view.world_points, body)


@pytest.mark.skipif(not DEFAULT_BANDAI_DIR.is_dir(), reason=f"motion capture not found at {DEFAULT_BANDAI_DIR}")
def test_shipped_checkpoint_on_held_out_clips() -> None:
    clips = load_bandai(frame_stride=1)
    held_out = [c for i, (_, c) in enumerate(clips) if i % 5 == 4]
    test = render_test_set(MotionWindows(held_out, 9, 10), seed=7)
    scores = evaluate(Lifter.load(device="cpu").model, test)
    assert scores["mpjpe_mm"] < 90.0 and scores["p_mpjpe_mm"] < 62.0, scores       # measured 75 / 51
    assert scores["pck3d"] > 80.0 and abs(scores["scale"] - 1.0) < 0.1, scores     # 88 %, 0.955
