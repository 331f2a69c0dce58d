"""Tests of the TCE video pose network (posestudio.models.tce).

Fast: small networks, 64-pixel crops, a stick figure drawn with OpenCV as training data (a moving
figure on a random background, left and right limbs in different colours).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posestudio.models.checkpoints import CheckpointError, save_checkpoint
from posestudio.models.detectors.base import FrameWindow
from posestudio.models.keypoints import H36M17
from posestudio.models.tce.crops import (
    CropBoxOptions,
    box_from_keypoints,
    frame_box,
    keypoints_from_crop,
    keypoints_to_crop,
    warp_crop,
)
from posestudio.models.tce.detector import TCEDetector
from posestudio.models.tce.heatmaps import decode_heatmaps, gaussian_targets, heatmap_loss
from posestudio.models.tce.network import TCENet
from posestudio.models.tce.sampler import DeformableConv2d
from posestudio.models.tce.train import (
    FLIP_H36M17,
    TRAINER_BOXES,
    AugmentConfig,
    TCETrainConfig,
    augment_batch,
    build_model,
    evaluate,
    load_tce,
    save_tce_checkpoint,
    train_tce,
)

# ---------------------------------------------------------------------------------------------
# A stick-figure sample source (H36M17 order)

_TEMPLATE = np.array([
    (0, 0), (-0.1, 0), (-0.1, 0.25), (-0.1, 0.5), (0.1, 0), (0.1, 0.25), (0.1, 0.5),
    (0, -0.2), (0, -0.4), (0, -0.5), (0, -0.6), (0.15, -0.4), (0.2, -0.2), (0.25, 0.0),
    (-0.15, -0.4), (-0.2, -0.2), (-0.25, 0.0)])
_LIMB_COLOUR = {"r_": (0, 0, 255), "l_": (255, 0, 0)}


def _bone_colour(a: str, b: str) -> tuple[int, int, int]:
    side = b[:2]
    base = _LIMB_COLOUR.get(side, (0, 255, 0))
    return base if "hip" in b or "knee" in b or "ankle" in b else tuple(min(255, c + 128) for c in base)


_BONES = [(H36M17.index(a), H36M17.index(b), _bone_colour(a, b)) for a, b in H36M17.bones]


def stick_clip(rng: np.random.Generator, size: int, n_frames: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """``(T, size, size, 3)`` uint8 BGR frames and ``(T, 17, 3)`` keypoints of one moving stick figure."""
    h = rng.uniform(0.5, 0.75) * size
    pose = _TEMPLATE.copy()
    pose[[2, 3, 5, 6, 12, 13, 15, 16]] += rng.normal(0, 0.08, (8, 2))
    centre = rng.uniform(0.35, 0.65, 2) * size
    vel = rng.normal(0, 0.03 * size, 2)
    jvel = rng.normal(0, 0.02, (17, 2))
    base = np.empty((size, size, 3), np.uint8)
    base[:] = rng.integers(0, 256, 3)
    for _ in range(3):
        p0 = rng.integers(0, size, 2)
        p1 = p0 + rng.integers(4, size // 3, 2)
        cv2.rectangle(base, tuple(map(int, p0)), tuple(map(int, p1)), tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    frames, kps = [], []
    for t in range(n_frames):
        dt = t - n_frames // 2
        xy = (pose + dt * jvel) * h + centre + dt * vel
        img = base.copy()
        pts = np.round(xy * 4).astype(np.int32)
        for a, b, c in _BONES:
            cv2.line(img, tuple(map(int, pts[a])), tuple(map(int, pts[b])), c, 2, cv2.LINE_AA, shift=2)
        cv2.circle(img, tuple(map(int, pts[10])), int(0.06 * h * 4), (200, 200, 200), -1, cv2.LINE_AA, shift=2)
        frames.append(img)
        kps.append(np.concatenate([xy, np.ones((17, 1))], 1))
    return np.stack(frames), np.stack(kps)


def _to_rgb_tensor(bgr: np.ndarray) -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 BGR -> ``(..., 3, H, W)`` float RGB in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(bgr[..., ::-1].astype(np.float32) / 255, -1, -3)))


def stick_source(size: int = 64):
    def source(rng: np.random.Generator, batch: int) -> dict:
        clips = [stick_clip(rng, size) for _ in range(batch)]
        return {"frames": _to_rgb_tensor(np.stack([c[0] for c in clips])),
                "keypoints": torch.from_numpy(np.stack([c[1][1] for c in clips]))}
    return source


def stick_sequences(n: int, size: int = 64, length: int = 5, seed: int = 123) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        f, k = stick_clip(rng, size, length)
        out.append({"frames": _to_rgb_tensor(f), "keypoints": k})
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One CPU thread: on a shared 2-core machine, two OpenMP threads competing with another job
    slow training down tens of times; one thread is as fast as two on these small networks."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _small_config(**kw) -> TCETrainConfig:
    base = {"steps": 60, "batch": 8, "lr": 3e-3, "warmup": 5, "input_size": 64, "width": 8, "seed": 0, "device": "cpu",
            "log_every": 10,
            "augment": AugmentConfig(flip_prob=0.0)}  # a stick figure has no front/back: flips are ambiguous
    base.update(kw)
    return TCETrainConfig(**base)


# ---------------------------------------------------------------------------------------------
# Deformable sampler


@pytest.mark.parametrize("k,d", [(3, 1), (3, 2), (3, 4), (3, 8), (5, 1)])
def test_deformable_zero_offsets_is_dilated_conv(k: int, d: int) -> None:
    torch.manual_seed(0)
    conv = DeformableConv2d(5, 7, k, d)
    x = torch.randn(2, 5, 13, 17)
    off = torch.zeros(2, 2 * k * k, 13, 17)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=d * (k // 2), dilation=d)
    assert torch.allclose(conv(x, off), ref, atol=1e-5)


@pytest.mark.parametrize("dy,dx,d", [(2, -1, 1), (-3, 2, 2), (1, 3, 4)])
def test_deformable_integer_offset_is_shifted_conv(dy: int, dx: int, d: int) -> None:
    torch.manual_seed(1)
    h, w, k = 20, 22, 3
    conv = DeformableConv2d(4, 6, k, d)
    x = torch.randn(2, 4, h, w)
    off = torch.zeros(2, 2 * k * k, h, w)
    off[:, 0::2], off[:, 1::2] = dy, dx
    shifted = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))  # shifted[p] = x[p + (dy, dx)]
    ref = F.conv2d(shifted, conv.weight, conv.bias, padding=d, dilation=d)
    reach = d * (k // 2)
    y0, y1 = reach + max(0, -dy), h - reach - max(0, dy)
    x0, x1 = reach + max(0, -dx), w - reach - max(0, dx)
    out = conv(x, off)
    assert y1 - y0 > 3 and x1 - x0 > 3
    assert torch.allclose(out[..., y0:y1, x0:x1], ref[..., y0:y1, x0:x1], atol=1e-5)


def test_deformable_offsets_get_gradients() -> None:
    conv = DeformableConv2d(3, 4, 3, 2)
    x = torch.randn(1, 3, 9, 9)
    off = (0.3 * torch.randn(1, 18, 9, 9)).requires_grad_()
    conv(x, off).square().sum().backward()
    assert off.grad is not None and off.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="offsets"):
        conv(x, torch.zeros(1, 8, 9, 9))


# ---------------------------------------------------------------------------------------------
# Heatmaps and crops


def test_heatmap_round_trip_is_sub_pixel() -> None:
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(6, 17, 3, generator=g) * 112 + 8  # input pixels of a 128 crop, away from the border
    kp[..., 2] = 1
    kp[0, 3, 2] = 0
    targets, weights = gaussian_targets(kp, (32, 32), stride=4, sigma=2.0)
    assert targets.shape == (6, 17, 32, 32) and weights[0, 3] == 0 and targets[0, 3].abs().max() == 0
    dec = decode_heatmaps(targets, stride=4)
    err_cells = (dec[..., :2] - kp[..., :2]).norm(dim=-1) / 4
    assert err_cells[weights > 0].max() < 0.1
    conf = dec[weights > 0][:, 2]  # the peak cell's value: >= exp(-(0.5^2 + 0.5^2) / (2 sigma^2)) = 0.94
    assert ((conf > 0.93) & (conf <= 1)).all()
    assert heatmap_loss(targets, targets, weights) == 0
    assert heatmap_loss(torch.zeros_like(targets), targets, weights) > 0


def test_crops_map_keypoints_both_ways() -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(frame, (200, 150), 4, (255, 255, 255), -1)
    kp = np.array([[200.0, 150.0, 1.0]])
    for box in (np.array([190.0, 140.0, 80.0]), np.array([160.0, 120.0, 300.0])):  # enlarging, area-reduced
        crop = warp_crop(frame, box, 64)
        g = crop[..., 0].astype(float)
        ys, xs = np.mgrid[:64, :64]
        centroid = np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()
        mapped = keypoints_to_crop(kp, box, 64)
        assert np.abs(centroid - mapped[0, :2]).max() < 0.3
        assert np.allclose(keypoints_from_crop(mapped, box, 64), kp)
    fb = frame_box(320, 240)
    corners = keypoints_to_crop(np.array([[-0.5, -0.5, 1], [319.5, 239.5, 1]]), fb, 64)  # letterboxed: 64 x 48
    assert np.allclose(corners[:, :2], [[-0.5, 7.5], [63.5, 55.5]])
    boxes = box_from_keypoints(np.array([[[0, 0, 1], [10, 20, 1], [np.nan, 5, 1]], [[0, 0, 0], [1, 1, 0], [1, 1, 0]]]),
                               margin=1.0)
    assert np.allclose(boxes[0], [5, 10, 20]) and np.isnan(boxes[1]).all()


def test_training_crops_put_joints_on_their_pixels() -> None:
    """augment_batch's grid_sample crop and its keypoint mapping agree (also mirrored)."""
    size, b = 96, 4
    frames = torch.zeros(b, 3, 3, size, size)
    rng = np.random.default_rng(0)
    kp = np.zeros((b, 17, 3))
    kp[..., :2] = rng.uniform(25, 70, (b, 17, 2))
    kp[..., 2] = 1
    j = 13  # l_wrist: one bright dot per sample, well inside the box of the others
    kp[:, j, :2] = rng.uniform(42, 54, (b, 2))
    yy, xx = np.mgrid[:size, :size]
    for i in range(b):
        dot = np.exp(-((xx - kp[i, j, 0]) ** 2 + (yy - kp[i, j, 1]) ** 2) / (2 * 1.5 ** 2))
        frames[i, :, 0] = torch.from_numpy(dot).float()
    aug = AugmentConfig(colour=0, occluder_prob=0, blur_prob=0, noise_std=0, drop_neighbour_prob=0, flip_prob=0.5)
    crops, kp_crop = augment_batch(frames, torch.from_numpy(kp).float(), _small_config(augment=aug), rng)
    assert crops.shape == (b, 3, 3, 64, 64)
    for i in range(b):
        img = crops[i, 1, 0].numpy()
        ys, xs = np.mgrid[:64, :64]
        centroid = np.array([(img * xs).sum(), (img * ys).sum()]) / img.sum()
        where = [jj for jj in range(17) if np.allclose(kp_crop[i, jj, :2].numpy(), centroid, atol=0.3)]
        assert j in where or FLIP_H36M17[j] in where


# ---------------------------------------------------------------------------------------------
# Network, checkpoints


def test_network_shapes_parameters_and_neutral_temporal_module() -> None:
    full = TCENet()
    assert 0.5e6 < full.n_parameters() < 1.5e6
    net = TCENet(width=8).eval()
    single = TCENet(width=8, temporal=False).eval()
    x = torch.rand(2, 3, 3, 64, 64)
    with torch.no_grad():
        assert net(x).shape == (2, 17, 16, 16)
        assert net(x[:, 1]).shape == (2, 17, 16, 16)
        assert single(x).shape == (2, 17, 16, 16)
        # zero-initialised offsets and fusion: a single-frame net's weights give the same output
        missing = net.load_state_dict(single.state_dict(), strict=False).missing_keys
        assert missing and all(k.startswith("tcm.") for k in missing)
        assert torch.allclose(net(x), single(x), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 16"):
        net(torch.rand(1, 3, 3, 60, 60))


def test_checkpoint_round_trip_and_wrong_format(tmp_path: Path) -> None:
    net = TCENet(width=8).eval()
    path = tmp_path / "tce.pt"
    cfg = _small_config()
    save_tce_checkpoint(path, net, cfg, {"steps": []}, command="test")
    loaded, ck = load_tce(path, device="cpu")
    assert ck["input_size"] == 64 and ck["command"] == "test" and ck["train_config"]["width"] == 8
    assert TCETrainConfig.from_dict(ck["train_config"]) == cfg
    x = torch.rand(1, 3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    other = tmp_path / "other.pt"
    save_checkpoint(other, "factorization", 1, {}, torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="expected 'posestudio.tce/1'"):
        load_tce(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        TCEDetector.from_checkpoint(junk)


def test_config_check_names_the_field() -> None:
    for kw, field in (({"batch": 0}, "batch"), ({"input_size": 100}, "input_size"), ({"lr": 0.0}, "lr"),
                      ({"augment": AugmentConfig(flip_prob=2.0)}, "flip_prob"),
                      ({"augment": AugmentConfig(boxes=CropBoxOptions(scale=(1.4, 1.1)))}, "boxes.scale = "),
                      ({"augment": AugmentConfig(boxes=CropBoxOptions(jitter=1.5))}, "boxes.jitter = "),
                      ({"augment": AugmentConfig(boxes=CropBoxOptions())}, "boxes.search_share = ")):
        with pytest.raises(ValueError, match=field):
            _small_config(**kw).check()


def test_train_config_reads_the_flat_box_fields_of_older_checkpoints() -> None:
    """Checkpoints written before CropBoxOptions (the shipped one) keep box_scale ... in ``augment`` itself."""
    old = _small_config().to_dict()
    assert old["augment"]["boxes"] == {"scale": (1.1, 1.4), "jitter": 0.08, "wide_share": 0.1, "wide_scale": (1.4, 3.0),
                                       "search_share": 0.0}
    flat = {k: v for k, v in old["augment"].items() if k != "boxes"}
    flat.update(box_scale=[1.2, 1.3], box_jitter=0.05, wide_prob=0.2, wide_scale=[1.5, 2.5])
    cfg = TCETrainConfig.from_dict({**old, "augment": flat})
    assert cfg.augment.boxes == CropBoxOptions(scale=(1.2, 1.3), jitter=0.05, wide_share=0.2, wide_scale=(1.5, 2.5),
                                               search_share=0.0)
    assert cfg.augment.flip_prob == 0.0 and TCETrainConfig.from_dict(cfg.to_dict()) == cfg
    default = dict(flat)
    for key in ("box_scale", "box_jitter", "wide_prob", "wide_scale"):
        del default[key]
    assert TCETrainConfig.from_dict({**old, "augment": default}).augment.boxes == TRAINER_BOXES
    with pytest.raises(ValueError, match=r"unknown augment fields \['box_size'\]"):
        TCETrainConfig.from_dict({**old, "augment": {**flat, "box_size": 1.0}})
    with pytest.raises(ValueError, match=r"unknown fields \['size'\]"):
        TCETrainConfig.from_dict({**old, "augment": {"boxes": {"size": 1.0}}})


# ---------------------------------------------------------------------------------------------
# Detector


def _window(frames: list[list[np.ndarray | None]], index: int = 0) -> FrameWindow:
    return FrameWindow(frames=frames, context=1, index=index)


def test_detector_output_shapes_and_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    h, w = 120, 160
    frames = [[None if k == 0 else rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k in range(3)]
              for _ in range(2)]
    det = TCEDetector(TCENet(width=8), input_size=64, device="auto", person_threshold=0.0, box_min_confidence=-1.0)
    assert det.name == "tce" and det.layout is H36M17 and det.context == 1
    det.reset(2)
    for t in range(2):
        out = det.detect(_window(frames, t))
        assert len(out) == 2
        for kp in out:
            assert kp.shape == (1, 17, 3) and kp.dtype == np.float64
            xy, conf = kp[0, :, :2], kp[0, :, 2]
            ok = np.isfinite(xy).all(1)
            assert (np.isnan(xy[~ok]).all())
            assert ((xy[ok] >= -0.5) & (xy[ok] <= [w - 0.5, h - 0.5])).all()
            assert ((conf[ok] >= 0) & (conf[ok] <= 1)).all()
    assert all(b is not None for b in det.boxes())
    det.set_boxes(1, (80.0, 60.0, 100.0))
    assert np.allclose(det.boxes()[1], [80, 60, 100])
    # nobody reaches the threshold: empty results, searching again
    path = tmp_path / "single.pt"
    save_tce_checkpoint(path, TCENet(width=8, temporal=False), _small_config(temporal=False), None)
    det0 = TCEDetector.from_checkpoint(path, device="cpu", person_threshold=1.5)
    assert det0.context == 0 and det0.input_size == 64
    det0.reset(2)
    out = det0.detect(FrameWindow(frames=[[f[1]] for f in frames], context=0, index=0))
    assert [o.shape for o in out] == [(0, 17, 3), (0, 17, 3)]
    assert det0.boxes() == [None, None]
    det0.close()


# ---------------------------------------------------------------------------------------------
# Training


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TCENet, dict, Path]:
    path = tmp_path_factory.mktemp("tce") / "tce.pt"
    model, log = train_tce(_small_config(), stick_source(64), checkpoint=path, command="test run")
    return model, log, path


@pytest.mark.slow
def test_training_lowers_loss_and_beats_untrained(trained: tuple[TCENet, dict, Path]) -> None:
    model, log, path = trained
    losses = [e["loss"] for e in log["steps"]]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    seqs = stick_sequences(6)
    torch.manual_seed(0)
    before = evaluate(build_model(_small_config()).eval(), seqs)
    after = evaluate(model, seqs)
    assert after["pck"] > before["pck"] + 0.2
    assert after["mean_error_px"] < before["mean_error_px"]
    assert np.isfinite(after["jitter_px"]) and after["n_joints"] == 6 * 5 * 17
    torso = evaluate(model, seqs, alpha=0.5, reference="torso")
    assert 0 <= torso["pck"] <= 1
    _, ck = load_tce(path, device="cpu")
    assert ck["log"]["step"] == 60 and "resume" in ck and ck["command"] == "test run"


def test_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    cfg = _small_config(steps=3, batch=2, width=4, checkpoint_every=2, log_every=1)
    seen: list[dict] = []
    train_tce(cfg, stick_source(64), checkpoint=path, progress=seen.append)
    assert [e["step"] for e in seen] == [1, 2, 3]
    _, log = train_tce(_small_config(steps=5, batch=2, width=4, log_every=1), stick_source(64), checkpoint=path,
                           resume=True)
    assert log["resumed_from"] == 3 and log["step"] == 5 and [e["step"] for e in log["steps"]] == [1, 2, 3, 4, 5]
    with pytest.raises(CheckpointError, match="differs"):
        train_tce(_small_config(steps=6, batch=2, width=8), stick_source(64), checkpoint=path, resume=True)


def test_single_frame_ablation_trains(tmp_path: Path) -> None:
    cfg = _small_config(steps=6, temporal=False, log_every=3)
    model, log = train_tce(cfg, stick_source(64), init=None)
    assert not model.temporal and all(np.isfinite(e["loss"]) for e in log["steps"])
    res = evaluate(model, stick_sequences(2))
    assert 0 <= res["pck"] <= 1
    # a single-frame checkpoint initialises a temporal run (the module starts neutral)
    path = tmp_path / "single.pt"
    save_tce_checkpoint(path, model, cfg, log)
    warm = build_model(_small_config(), init=path).eval()
    x = torch.rand(1, 3, 3, 64, 64)
    with torch.no_grad():
        assert warm.temporal and torch.allclose(warm(x), model(x), atol=1e-5)
