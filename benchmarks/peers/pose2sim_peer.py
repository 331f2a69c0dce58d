"""Pose2Sim 0.10.49 as a 3D-reconstruction peer: its own triangulation (and filtering), driven
through a Pose2Sim project folder exactly as its users run it.

What :func:`triangulate` does:

1. Writes a temporary Pose2Sim trial folder (``<tmp>/trial``; the parent holds no
   ``Config.toml``, so Pose2Sim treats the trial as a single-trial project)::

       trial/Config.toml                      Pose2Sim's Demo_SinglePerson/Config.toml, edited
       trial/calibration/Calib.toml           the rig, distortion-free (same K, zero distortion)
       trial/pose/camNN_json/camNN_<frame:012d>_keypoints.json   OpenPose-style 2D keypoints

   2D points are undistorted first (``Camera.undistort_pixels``: still pixels, same K) and
   Pose2Sim gets a rig with zero distortion, so its pinhole DLT is not penalised for lens
   distortion it does not model well (its own ``undistort_points`` option is off; its Config
   says it is "not implemented yet"). Missing detections (NaN) are written as OpenPose does,
   ``0, 0, 0``; Pose2Sim drops any likelihood below its threshold.

2. Runs ``Pose2Sim.triangulation(<trial>/Config.toml)`` and, with ``filtering=True``,
   ``Pose2Sim.filtering(<trial>/Config.toml)``: Pose2Sim's own entry points, reading its own
   project files. Settings (the Demo config's values unless noted):

   - ``[triangulation]``: likelihood-weighted DLT; a joint whose mean reprojection error exceeds
     ``reproj_error_threshold_triangulation = 15`` px is re-triangulated with 1, 2, ... cameras
     left out (best subset kept) down to ``min_cameras_for_triangulation = 2``;
     ``likelihood_threshold_triangulation = 0.3``; ``interpolation = 'linear'`` of gaps shorter
     than ``interp_if_gap_smaller_than = 20`` frames; larger gaps ``fill_large_gaps_with =
     'last_value'`` (Pose2Sim's default; a parameter here); ``handle_LR_swap = false``,
     ``undistort_points = false``; ``make_c3d = false`` (output format only; off so the timing is
     not spent writing C3D).
   - ``[filtering]``: ``reject_outliers = true`` (its Hampel filter, window 7), then
     ``type = 'butterworth'``, ``cut_off_frequency = 6`` Hz, ``order = 4`` (zero-phase);
     ``display_figures = false``, ``save_filt_plots = false``, ``make_c3d = false``.
   - ``[project]``: ``multi_person = false``, ``frame_rate = fps``.
   - ``[logging] use_custom_logging = true`` so Pose2Sim does not install its own log handlers
     (its messages are captured into ``info["log"]``).

3. Reads Pose2Sim's output TRC back (``pose-3d/trial_<first>-<last>.trc``, or the
   ``..._filt_butterworth.trc`` one) into ``(F, J, 3)`` metres in PoseStudio's world frame.

Conventions found in the 0.10.49 source:

- Skeleton: none of Pose2Sim's built-in models (HALPE_26, COCO_17, BODY_25, ...) carries the
  H36M pelvis/spine/thorax/head-top points, so a custom model ``POSESTUDIO`` is defined in the
  Config: the caller's joint tree (H36M17's bones when ``joint_names`` is H36M17, else a flat
  tree under joint 0), ``id`` = the joint's index in the JSON ``pose_keypoints_2d`` array.
  NB: the Demo config's documented ``[[pose.CUSTOM]]`` (an *array* of tables) fails in 0.10.49
  with anytree 2.x (``DictImporter`` wants a dict); the model is therefore written as a plain
  table ``[pose.POSESTUDIO]`` with ``[[pose.POSESTUDIO.children]]`` arrays, which it accepts.
- TRC axes: Pose2Sim triangulates in the calibration's world frame (assumed Z-up) and writes the
  TRC Y-up via ``zup2yup``: ``(X, Y, Z)_trc = (Y, Z, X)_world``; so ``world = (Z, X, Y)_trc``.
  Units: metres (the Calib.toml translations are metres, and the TRC header says ``m``).
- Frames: the TRC's ``Frame#`` column holds the input frame index. Pose2Sim trims the sequence to
  its correctly triangulated sections (``sections_to_keep = 'all'``, ``min_chunk_size = 10``);
  frames it drops come back NaN. Its filtering step drops the last frame of the TRC (its
  ``f_range[1]-1`` slicing), which also comes back NaN.
- Importing Pose2Sim switches matplotlib to the Agg backend (it tries Qt first) and sets
  ``np.set_printoptions(legacy='1.21')`` process-wide.

Pose2Sim is never a PoseStudio runtime dependency: install it for benchmarks only
(``benchmarks/README.md``). Any failure (import or run) comes back as ``points=None`` with
``info["failure"]`` saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import logging
import shutil
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from posestudio.calibration.rig_formats import export_rig
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17

PEER = "pose2sim"
MODEL_NAME = "POSESTUDIO"

# Settings from the benchmark issue, on top of Pose2Sim's Demo_SinglePerson/Config.toml.
TRIANGULATION = {
    "reproj_error_threshold_triangulation": 15,
    "likelihood_threshold_triangulation": 0.3,
    "min_cameras_for_triangulation": 2,
    "interpolation": "linear",
    "interp_if_gap_smaller_than": 20,
    "fill_large_gaps_with": "last_value",
    "handle_LR_swap": False,
    "undistort_points": False,
    "remove_incomplete_frames": False,
    "sections_to_keep": "all",
    "make_c3d": False,
}
FILTERING = {
    "reject_outliers": True,
    "filter": True,
    "type": "butterworth",
    "display_figures": False,
    "save_filt_plots": False,
    "make_c3d": False,
    "butterworth": {"cut_off_frequency": 6, "order": 4},
}


def pose2sim_version() -> str:
    """Installed Pose2Sim version, or '' when it is not installed."""
    try:
        from importlib.metadata import version

        return version("pose2sim")
    except Exception:
        return ""


def distortion_free(rig: CameraRig) -> CameraRig:
    """The rig with the same K and poses and zero (pinhole, 4-coefficient) distortion."""
    cams = [dataclasses.replace(c, dist=np.zeros(4), model="pinhole") for c in rig.cameras]
    return CameraRig(cams, dict(rig.metadata))


def undistort_keypoints(rig: CameraRig, keypoints: np.ndarray) -> np.ndarray:
    """``(C, F, J, 3)`` distorted pixels + confidence -> undistorted pixels (same K) + confidence."""
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    for c, cam in enumerate(rig.cameras):
        kp[c, ..., :2] = cam.undistort_pixels(kp[c, ..., :2])
    return kp


def _skeleton(joint_names: list[str]) -> dict:
    """Pose2Sim custom model (anytree DictImporter dict): ids index the JSON keypoint arrays."""
    names = list(joint_names)
    if tuple(names) == H36M17.joints:
        parents = [int(p) for p in H36M17.parents]
    else:  # flat tree under the first joint: only the keypoint ids and names matter here
        parents = [-1] + [0] * (len(names) - 1)
    roots = [i for i, p in enumerate(parents) if p < 0]
    if len(roots) != 1:
        raise ValueError(f"skeleton needs exactly one root, got {roots}")

    def node(i: int) -> dict:
        d: dict = {"name": names[i], "id": i}
        kids = [node(k) for k, p in enumerate(parents) if p == i]
        if kids:
            d["children"] = kids
        return d

    return node(roots[0])


def _config(fps: float, joint_names: list[str], fill_large_gaps_with: str) -> dict:
    """Pose2Sim's Demo_SinglePerson/Config.toml with this benchmark's settings."""
    import Pose2Sim as _p2s
    import rtoml

    demo = Path(_p2s.__file__).resolve().parent / "Demo_SinglePerson" / "Config.toml"
    cfg = rtoml.load(demo)
    cfg["pose"].pop("CUSTOM", None)  # the Demo's (array-of-tables) example; not used
    cfg["project"].update({"multi_person": False, "frame_rate": float(fps), "frame_range": "auto"})
    cfg["pose"]["pose_model"] = MODEL_NAME
    cfg["pose"][MODEL_NAME] = _skeleton(joint_names)
    tri = dict(TRIANGULATION, fill_large_gaps_with=fill_large_gaps_with)
    cfg.setdefault("triangulation", {}).update(tri)
    filt = cfg.setdefault("filtering", {})
    for k, v in FILTERING.items():
        if isinstance(v, dict):
            filt.setdefault(k, {}).update(v)
        else:
            filt[k] = v
    cfg.setdefault("logging", {})["use_custom_logging"] = True
    return cfg


def write_project(trial: Path, rig: CameraRig, keypoints: np.ndarray, fps: float,
                  joint_names: list[str], fill_large_gaps_with: str = "last_value") -> Path:
    """Write a Pose2Sim trial folder; returns its Config.toml path.

    ``keypoints`` are ``(C, F, J, 3)`` UNDISTORTED pixels + confidence for ``rig`` (which should be
    distortion-free); NaN (or non-finite) detections are written as OpenPose's ``0, 0, 0``.
    """
    import rtoml

    trial.mkdir(parents=True, exist_ok=True)
    (trial / "calibration").mkdir(exist_ok=True)
    export_rig(rig, trial / "calibration" / "Calib.toml", "pose2sim")
    cfg_path = trial / "Config.toml"
    cfg_path.write_text(rtoml.dumps(_config(fps, joint_names, fill_large_gaps_with)))

    c_n, f_n, j_n, _ = keypoints.shape
    kp = np.where(np.isfinite(keypoints).all(axis=-1, keepdims=True), keypoints, 0.0)
    for c in range(c_n):
        d = trial / "pose" / f"cam{c + 1:02d}_json"
        d.mkdir(parents=True, exist_ok=True)
        for f in range(f_n):
            flat = [round(float(v), 6) for v in kp[c, f].ravel()]
            doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat}]}
            (d / f"cam{c + 1:02d}_{f:012d}_keypoints.json").write_text(json.dumps(doc))
    return cfg_path


def read_trc(path: Path, joint_names: list[str], n_frames: int) -> np.ndarray:
    """Pose2Sim TRC (Y-up, metres) -> ``(n_frames, J, 3)`` world points (Z-up); NaN where absent."""
    lines = Path(path).read_text().splitlines()
    markers = [m.strip() for m in lines[3].split("\t")[2::3]]
    markers = [m for m in markers if m]
    col = {m: i for i, m in enumerate(markers)}
    missing = [n for n in joint_names if n not in col]
    if missing:
        raise ValueError(f"{path.name}: no markers {missing}")
    order = np.array([col[n] for n in joint_names])
    out = np.full((n_frames, len(joint_names), 3), np.nan)
    for line in lines[5:]:
        if not line.strip():
            continue
        v = line.split("\t")
        f = int(round(float(v[0])))
        if not 0 <= f < n_frames:
            continue
        vals = np.array([float(x) if x.strip() else np.nan for x in v[2:2 + 3 * len(markers)]], float)
        vals = np.pad(vals, (0, 3 * len(markers) - vals.size), constant_values=np.nan).reshape(-1, 3)
        yup = vals[order]
        out[f] = yup[:, [2, 0, 1]]  # (X, Y, Z)_trc = (Y, Z, X)_world
    return out


def triangulate(rig: CameraRig, keypoints: np.ndarray, fps: float, joint_names: list[str],
                filtering: bool = False, *, fill_large_gaps_with: str = "last_value",
                workdir: str | Path | None = None, keep: bool = False
                ) -> tuple[np.ndarray | None, float, dict]:
    """Reconstruct 3D joints with Pose2Sim's own pipeline (see module docstring).

    Args:
        rig: calibrated rig (metres, world Z up), with its real lens distortion.
        keypoints: ``(C, F, J, 3)`` x, y in DISTORTED pixels, confidence; NaN where not detected.
        fps: frame rate, Hz (Pose2Sim writes it in the TRC; the Butterworth cut-off uses it).
        joint_names: the ``J`` joint names (H36M17's get its bone tree as Pose2Sim's skeleton).
        filtering: also run ``Pose2Sim.filtering`` (Hampel outlier rejection + 6 Hz Butterworth).
        fill_large_gaps_with: Pose2Sim's option for gaps >= 20 frames: ``'last_value'`` (its
            default), ``'nan'`` or ``'zeros'``.
        workdir: where to make the temporary project (default: system temp); ``keep`` keeps it.
    Returns:
        ``(points, seconds, info)``: ``(F, J, 3)`` metres in the rig's world frame (NaN for frames
        Pose2Sim dropped) or None on failure; wall seconds of Pose2Sim's run (triangulation +
        filtering, reading its project files included, writing them excluded); ``info`` with
        ``peer``, ``version``, ``failure`` ('' on success), ``timings`` (``write_project``,
        ``triangulation``, ``filtering``, ``read_output``, ``total``), ``project`` (kept path or
        None), ``trc``, ``frames_out`` and ``log`` (Pose2Sim's messages, last 4000 characters).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    info: dict = {"peer": PEER, "version": pose2sim_version(), "failure": "", "timings": {},
                  "project": None, "trc": "", "frames_out": 0, "log": "",
                  "notes": ["2D points undistorted by PoseStudio; Pose2Sim given a zero-distortion rig"]}
    timings = info["timings"]
    if kp.ndim != 4 or kp.shape[-1] != 3 or kp.shape[0] != len(rig.cameras) or kp.shape[2] != len(joint_names):
        info["failure"] = f"keypoints shape {kp.shape} does not match {len(rig.cameras)} cameras, {len(joint_names)} joints"
        return None, 0.0, info
    if not info["version"]:
        info["failure"] = "Pose2Sim is not installed (see benchmarks/README.md)"
        return None, 0.0, info
    n_frames = kp.shape[1]
    t_all = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="posestudio_pose2sim_", dir=workdir))
    trial = tmp / "trial"
    log_buf = io.StringIO()
    handler = logging.StreamHandler(log_buf)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    old_level = root.level
    seconds = 0.0
    try:
        # Our handler goes on the root logger before Pose2Sim is imported: its import-time
        # logging.warning would otherwise call logging.basicConfig and leave a root handler
        # writing to the redirected stderr.
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        with contextlib.redirect_stderr(log_buf), contextlib.redirect_stdout(log_buf):
            # Benchmark-only dependency; its step modules are imported here so that the timings
            # below exclude imports (Pose2Sim imports them lazily inside each step).
            p2s = importlib.import_module("Pose2Sim.Pose2Sim")
            importlib.import_module("Pose2Sim.triangulation")
            importlib.import_module("Pose2Sim.filtering")

            t0 = time.perf_counter()
            cfg_path = write_project(trial, distortion_free(rig), undistort_keypoints(rig, kp), fps,
                                     list(joint_names), fill_large_gaps_with)
            timings["write_project"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            p2s.triangulation(str(cfg_path))
            timings["triangulation"] = time.perf_counter() - t0
            seconds = timings["triangulation"]
            if filtering:
                t0 = time.perf_counter()
                p2s.filtering(str(cfg_path))
                timings["filtering"] = time.perf_counter() - t0
                seconds += timings["filtering"]

        t0 = time.perf_counter()
        trcs = sorted((trial / "pose-3d").glob("*.trc"))
        want = [p for p in trcs if ("_filt_" in p.name) == filtering]
        if not want:
            raise RuntimeError(f"Pose2Sim wrote no {'filtered ' if filtering else ''}TRC (found {[p.name for p in trcs]})")
        points = read_trc(want[0], list(joint_names), n_frames)
        timings["read_output"] = time.perf_counter() - t0
        info["trc"] = want[0].name
        info["frames_out"] = int(np.isfinite(points).all(axis=-1).any(axis=-1).sum())
    except BaseException as exc:  # noqa: BLE001  (a peer's failure is a result, not a crash)
        if isinstance(exc, KeyboardInterrupt):
            raise
        info["failure"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc(limit=6)
        points = None
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        info["log"] = log_buf.getvalue()[-4000:]
        timings["total"] = time.perf_counter() - t_all
        if keep:
            info["project"] = str(trial)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return points, seconds, info


def _random_walk(n_frames: int, n_joints: int, seed: int = 0) -> np.ndarray:
    """``(F, J, 3)`` joints random-walking around a standing body in the capture volume."""
    rng = np.random.default_rng(seed)
    base = np.column_stack([rng.uniform(-0.3, 0.3, n_joints), rng.uniform(-0.3, 0.3, n_joints),
                            rng.uniform(0.1, 1.8, n_joints)])
    steps = rng.normal(0.0, 0.01, (n_frames, n_joints, 3))
    return base[None] + np.cumsum(steps, axis=0)


if __name__ == "__main__":
    from posestudio.core.pose_metrics import mpjpe_absolute
    from posestudio.synthetic import make_studio_rig
    from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections

    rig = make_studio_rig(4, (1920, 1080), seed=0)
    names = list(H36M17.joints)
    gt = _random_walk(60, len(names), seed=0)
    print(f"Pose2Sim {pose2sim_version() or '(not installed)'}; 4 cameras, 60 frames, {len(names)} joints")

    clean = simulate_detections(rig, gt, DetectorErrors(noise_px=0, outlier_rate=0, occlusion_rate=0,
                                                        confidence=(1.0, 1.0)))
    pts, sec, info = triangulate(rig, clean.keypoints, 30.0, names, filtering=False)
    if pts is None:
        raise SystemExit(f"failed: {info['failure']}\n{info.get('traceback', '')}\n{info['log']}")
    err = mpjpe_absolute(pts, gt) * 1000
    print(f"noiseless:            MPJPE {err:.4f} mm, Pose2Sim {sec:.2f} s "
          f"(write {info['timings']['write_project']:.2f} s), frames out {info['frames_out']}")
    assert err < 1.0, err

    noisy = simulate_detections(rig, gt, DetectorErrors(seed=1))
    for filt in (False, True):
        pts, sec, info = triangulate(rig, noisy.keypoints, 30.0, names, filtering=filt)
        if pts is None:
            print(f"detector errors, filtering={filt}: failed: {info['failure']}")
            continue
        print(f"detector errors, filtering={filt!s:5}: MPJPE {mpjpe_absolute(pts, gt) * 1000:.1f} mm, "
              f"Pose2Sim {sec:.2f} s (write {info['timings']['write_project']:.2f} s), "
              f"frames out {info['frames_out']}/{gt.shape[0]}")
