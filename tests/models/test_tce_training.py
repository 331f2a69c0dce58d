"""``posestudio train tce`` and its data: rendered samples, a studio session's real frames, the shipped checkpoint.

Fast: tiny networks and crops, a short rendered take as the "session" (its true 2D and 3D stand
in for a reconstruction), procedural walks instead of the motion capture.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from posestudio.cli import main as cli_main
from posestudio.core.keypoints_file import (
    Keypoints2D,
    Points3D,
    read_keypoints2d,
    read_points3d,
    write_keypoints2d,
    write_points3d,
)
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17
from posestudio.models.tce.crops import CropBoxOptions, frame_box, keypoints_from_crop
from posestudio.models.tce.detector import DEFAULT_CHECKPOINT, TCEDetector
from posestudio.models.tce.network import TCENet
from posestudio.models.tce.train import TRAINER_BOXES, AugmentConfig, TCETrainConfig, evaluate, load_tce
from posestudio.reconstruction.pseudo_labels import pseudo_labels
from posestudio.reconstruction.tce_sessions import SESSION_BOXES, SessionOptions, SessionSource, concat_sessions
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.performance import write_performance
from posestudio.synthetic.render_augment import RenderOptions
from posestudio.synthetic.tce_data import (
    RENDERED_BOXES,
    RenderedSource,
    RenderedSourceOptions,
    bandai_split,
    mix_sources,
    walking_motions,
)

N_FRAMES = 10


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread (a shared machine: competing OpenMP threads slow small networks tens of times)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """A 3-camera 320x180 take of a walk, and a session folder whose 2D and 3D are the take's truth.

    Returns ``(session folder, rig file, videos)``; the folder has no rig.toml (``--calibration``).
    """
    root = tmp_path_factory.mktemp("tce_session")
    rig = make_studio_rig(3, (320, 180), radius=(3.5, 4.5), seed=3, distortion="mild")
    body = walking_body(N_FRAMES, 30.0, 0.8, (-0.3, 0.0), 20.0)
    opts = RenderOptions(seed=1, blur_prob=0.0, occluder_prob=0.0)
    summary = write_performance(root / "take", rig, [body], 30.0, opts)
    truth = read_keypoints2d(root / "take" / "truth_keypoints2d.npz")
    kp = truth.keypoints.copy()
    kp[..., 2] = np.where(np.isfinite(kp[..., 0]), 1.0, np.nan)
    folder = root / "session"
    folder.mkdir()
    write_keypoints2d(folder / "keypoints2d.npz", Keypoints2D(kp, truth.camera_names, list(H36M17.joints), 30.0))
    write_points3d(folder / "points3d.npz", Points3D(body, np.ones(body.shape[:2]), list(H36M17.joints), 30.0))
    videos = [Path(v) for v in summary["videos"].values()]
    return folder, root / "take" / "rig.toml", videos


def _inside(kp: np.ndarray, size: int) -> np.ndarray:
    return ((kp[..., :2] >= -0.5) & (kp[..., :2] <= size - 0.5)).all(-1)


# ---------------------------------------------------------------------------------------------
# Rendered samples


def test_bandai_split_holds_out_every_fifth_clip() -> None:
    clips = [(f"c{i}", np.zeros((3, 17, 3))) for i in range(12)]
    train, test = bandai_split(clips)
    assert [n for n, _ in test] == ["c4", "c9"] and len(train) == 10


def test_each_crop_source_keeps_its_own_box_defaults() -> None:
    """One CropBoxOptions for the trainer's, the rendered and the session crops, each with its values."""
    assert AugmentConfig().boxes == TRAINER_BOXES == CropBoxOptions(scale=(1.1, 1.4), jitter=0.08, wide_share=0.1,
                                                                   wide_scale=(1.4, 3.0), search_share=0.0)
    assert RenderedSourceOptions().boxes == RENDERED_BOXES == CropBoxOptions(
        scale=(1.1, 1.5), jitter=0.08, wide_share=0.1, wide_scale=(1.5, 3.0), search_share=0.15)
    assert SessionOptions().boxes == SESSION_BOXES == CropBoxOptions(
        scale=(1.1, 1.5), jitter=0.08, wide_share=0.1, wide_scale=(1.5, 2.0), search_share=0.15)
    for options, what in ((RenderedSourceOptions(boxes=CropBoxOptions(jitter=0.6)), "rendered source boxes.jitter"),
                          (RenderedSourceOptions(boxes=CropBoxOptions(wide_share=0.5, search_share=0.6)),
                           "boxes.wide_share \\+ boxes.search_share"),
                          (SessionOptions(boxes=CropBoxOptions(wide_scale=(3.0, 2.0))), "session boxes.wide_scale"),
                          (SessionOptions(context_scale=1.2), "boxes.scale's high end")):
        with pytest.raises(ValueError, match=what):
            options.check()


def test_rendered_source_yields_documented_shapes_with_labels_in_the_crops() -> None:
    boxes = replace(RENDERED_BOXES, search_share=0.5)
    src = RenderedSource(walking_motions(2, 20), RenderedSourceOptions(input_size=64, boxes=boxes))
    batch = src(np.random.default_rng(0), 8)
    frames, kp = batch["frames"], batch["keypoints"]
    assert frames.shape == (8, 3, 3, 64, 64) and frames.dtype == np.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert kp.shape == (8, 3, 17, 3)
    labelled = np.isfinite(kp[..., 0])
    assert labelled[:, 1].sum(-1).min() >= 8  # frame t: most of the body in the crop
    assert _inside(kp[labelled], 64).all()
    assert set(np.unique(kp[labelled][:, 2])) <= {1.0}  # hidden joints keep their label (weight 1)
    # search crops show a small person: their labels span far less of the crop than tracked ones
    span = np.nanmax(kp[:, 1, :, 1], -1) - np.nanmin(kp[:, 1, :, 1], -1)
    assert np.nanmedian(span[batch["kind"] == 2]) < 0.5 * np.nanmedian(span[batch["kind"] == 0])


def test_mixed_source_draws_from_both() -> None:
    def const(value: float):
        def source(rng: np.random.Generator, b: int) -> dict:
            return {"frames": np.full((b, 3, 3, 16, 16), value, np.float32), "keypoints": np.full((b, 17, 3), value)}
        return source

    out = mix_sources(const(0.0), const(1.0), 0.5)(np.random.default_rng(0), 200)
    assert out["frames"].shape == (200, 3, 3, 16, 16) and out["keypoints"].shape == (200, 17, 3)
    share = out["source"].mean()
    assert 0.35 < share < 0.65
    np.testing.assert_array_equal(out["frames"][:, 0, 0, 0, 0], out["source"].astype(np.float32))


# ---------------------------------------------------------------------------------------------
# A studio session as a sample source


def test_session_source_crops_frames_with_labels_and_respects_the_frame_range(session) -> None:
    folder, rig_file, videos = session
    opts = SessionOptions(input_size=32)
    src = SessionSource.from_folder(folder, videos, calibration=rig_file, frames=(3, 8), options=opts)
    m = opts.store_size
    n = len(src)
    assert src.crops.shape == (n, 3, m, m, 3) and src.crops.dtype == np.uint8
    assert src.labels.shape == (n, 17, 3)
    assert src.index[:, 1].min() >= 3 and src.index[:, 1].max() <= 7 and n >= 10
    lab = np.isfinite(src.labels[..., 0])
    assert _inside(src.labels[lab], m).all()
    # stored labels are the pseudo-labels of that camera and frame, in crop pixels
    pl = pseudo_labels(CameraRig.load(rig_file), read_keypoints2d(folder / "keypoints2d.npz"),
                       read_points3d(folder / "points3d.npz")).keypoints
    back = keypoints_from_crop(src.labels, src.boxes, m)
    expect = pl[src.index[:, 0], src.index[:, 1]]
    np.testing.assert_allclose(back[lab][:, :2], expect[lab][:, :2], atol=1e-6)
    # frames outside 3:8 are never cropped: at the range's ends the missing neighbour is frame t
    first, last = src.index[:, 1] == 3, src.index[:, 1] == 7
    assert first.any() and last.any()
    np.testing.assert_array_equal(src.crops[first, 0], src.crops[first, 1])
    np.testing.assert_array_equal(src.crops[last, 2], src.crops[last, 1])
    inner = src.index[:, 1] == 5
    assert not np.array_equal(src.crops[inner, 0], src.crops[inner, 1])  # a real neighbour (the body moved)
    # drawn samples: the documented shapes, labels inside the crops
    batch = concat_sessions([src])(np.random.default_rng(0), 6)
    assert batch["frames"].shape == (6, 3, 3, 32, 32) and batch["frames"].dtype == np.float32
    assert batch["keypoints"].shape == (6, 17, 3)
    got = np.isfinite(batch["keypoints"][..., 0])
    assert got.sum(-1).min() >= 8 and _inside(batch["keypoints"][got], 32).all()
    assert (batch["index"][:, 1] >= 3).all() and (batch["index"][:, 1] < 8).all()
    # the whole-frame (search) views: the frame letterboxed, labels in its pixels
    assert src.whole.shape == (n, 3, 32, 32, 3)
    whole = keypoints_from_crop(src.whole_labels, frame_box(320, 180), 32)
    np.testing.assert_allclose(whole[lab][:, :2], expect[lab][:, :2], atol=1e-6)
    np.testing.assert_array_equal(src.whole[last, 2], src.whole[last, 1])


def test_session_source_names_what_is_missing(session, tmp_path: Path) -> None:
    folder, rig_file, videos = session
    with pytest.raises(ValueError, match="--calibration"):
        SessionSource.from_folder(folder, videos)
    with pytest.raises(ValueError, match="keypoints2d.npz"):
        SessionSource.from_folder(tmp_path, videos, calibration=rig_file)
    with pytest.raises(ValueError, match="select nothing"):
        SessionSource.from_folder(folder, videos, calibration=rig_file, frames=(50, 60))


# ---------------------------------------------------------------------------------------------
# The command


def _tiny(out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "tce", "--out", str(out), "--steps", str(steps), "--batch", "2", "--input-size", "32",
            "--width", "8", "--dilations", "1", "2", "--threads", "1", "--device", "cpu", "--log-every", "1",
            "--bandai", "/nonexistent", *extra]


def test_train_tce_runs_end_to_end_resumes_and_loads(session, tmp_path: Path, capsys) -> None:
    folder, rig_file, videos = session
    out = tmp_path / "tce.pt"
    args = _tiny(out, 3, "--session", str(folder), "--videos", *map(str, videos), "--calibration", str(rig_file),
                 "--frames", "2:8", "--session-share", "0.5")
    assert cli_main(args) == 0
    text = capsys.readouterr().out
    assert "step 3/3" in text and "procedural walks" in text and "session" in text
    det = TCEDetector.from_checkpoint(out, device="cpu")
    assert det.context == 1 and det.input_size == 32
    _, ck = load_tce(out)
    assert ck["log"]["step"] == 3 and "resume" in ck and "train tce" in ck["command"]
    assert cli_main(_tiny(out, 5, "--resume", "--strip")) == 0
    _, ck = load_tce(out)
    assert ck["log"]["step"] == 5 and ck["log"]["resumed_from"] == 3 and "resume" not in ck
    assert "step 4/5" in capsys.readouterr().out


@pytest.mark.parametrize("bad, expected", [
    (["--steps", "0"], "steps"),
    (["--frames", "7"], "--frames"),
    (["--videos", "a.mp4"], "--session"),
    (["--no-such-option"], "unrecognized"),
])
def test_train_tce_bad_option_is_one_line(tmp_path: Path, capsys, bad: list[str], expected: str) -> None:
    assert cli_main(_tiny(tmp_path / "x.pt", 1, *bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("posestudio train tce: error:") and expected in err[0]


# ---------------------------------------------------------------------------------------------
# The shipped checkpoint


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason=f"no shipped checkpoint at {DEFAULT_CHECKPOINT}")
def test_shipped_checkpoint_loads_and_beats_an_untrained_net() -> None:
    model, ck = load_tce(DEFAULT_CHECKPOINT, "cpu")
    assert DEFAULT_CHECKPOINT.stat().st_size < 8 * 2 ** 20 and "resume" not in ck
    assert ck["input_size"] == 128 and model.temporal
    boxes = replace(RENDERED_BOXES, wide_share=0.0, search_share=0.0)
    src = RenderedSource(walking_motions(3, 40, seed=9), RenderedSourceOptions(boxes=boxes))
    batch = src(np.random.default_rng(5), 12)
    seqs = [{"frames": torch.from_numpy(batch["frames"][i]), "keypoints": batch["keypoints"][i]} for i in range(12)]
    torch.manual_seed(0)
    untrained = TCENet(**{**ck["net_config"]}).eval()
    trained = evaluate(model, seqs, reference="crop")
    base = evaluate(untrained, seqs, reference="crop")
    assert trained["pck"] > 0.6 and trained["pck"] > base["pck"] + 0.3, (trained, base)


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(), reason=f"no shipped checkpoint at {DEFAULT_CHECKPOINT}")
def test_shipped_checkpoints_train_config_reads_back() -> None:
    """Written before CropBoxOptions: its flat augment fields (box_scale ...) are read into augment.boxes."""
    _, ck = load_tce(DEFAULT_CHECKPOINT, "cpu")
    assert "box_scale" in ck["train_config"]["augment"]
    config = TCETrainConfig.from_dict(ck["train_config"])
    assert config.augment.boxes == TRAINER_BOXES and not config.augment.crop and config.steps == 400
    config.check()
    assert TCETrainConfig.from_dict(config.to_dict()) == config
