"""``posestudio dataset SESSION --out OUT``: a recorded session as a dataset for researchers (COCO-style 2D,
3D in metres, the rig); the layout is ``docs/recording.md`` ("The dataset export")."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from posestudio.core.errors import InputError

EXAMPLE = """example:
  posestudio reconstruct sessions/take1            # optional: offline 2D and 3D into sessions/take1/offline/
  posestudio dataset sessions/take1 --out datasets/take1

Writes OUT/images/<camera>/<slot>.jpg (hard links to the session's frames where the file system
allows), OUT/annotations.json (COCO person keypoints: one image per camera and recorded frame set,
one annotation per image with a person, keypoints in COCO's 17-joint order), OUT/points3d.npz
(frames, 17, 3) in metres (H36M17 joints, the rig's world frame, Z up) with slots and studio times,
OUT/rig.toml and OUT/cameras.json (K, dist, R, t per camera), and OUT/README.md describing them.
The 2D and 3D come from SESSION/offline/ when 'posestudio reconstruct SESSION' made it, else from
the live results the server recorded."""

#: H36M17 names -> COCO17 names (H36M17 has no eyes or ears; its "head" is the top of the head, not the nose).
H36M_TO_COCO = {"l_shoulder": "left_shoulder", "r_shoulder": "right_shoulder", "l_elbow": "left_elbow",
                "r_elbow": "right_elbow", "l_wrist": "left_wrist", "r_wrist": "right_wrist", "l_hip": "left_hip",
                "r_hip": "right_hip", "l_knee": "left_knee", "r_knee": "right_knee", "l_ankle": "left_ankle",
                "r_ankle": "right_ankle"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``dataset`` subcommand."""
    p = sub.add_parser("dataset", help="a recorded session as a researchers' dataset (COCO 2D, 3D, rig)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, help="a session folder (posestudio serve --record)")
    p.add_argument("--out", required=True, type=Path, help="the dataset folder (new, or empty)")
    p.add_argument("--min-confidence", type=float, default=0.3,
                   help="2D keypoints below this confidence are marked not labelled (v = 0; default 0.3)")
    p.set_defaults(func=run)


def coco_from(keypoints: np.ndarray, joint_names: list[str]) -> np.ndarray:
    """``(..., J, 3)`` keypoints of any known layout as ``(..., 17, 3)`` in COCO17 order (NaN where the layout
    has no such joint): COCO17 and BlazePose33 by name, H36M17 by :data:`H36M_TO_COCO`."""
    from posestudio.models.keypoints import COCO17

    out = np.full((*keypoints.shape[:-2], 17, 3), np.nan)
    names = {n: i for i, n in enumerate(joint_names)}
    rename = H36M_TO_COCO if "pelvis" in names else {}
    for name, j in names.items():
        target = rename.get(name, name if not rename else None)
        if target in COCO17.joints:
            out[..., COCO17.index(target), :] = keypoints[..., j, :]
    return out


def _results(session: Any) -> tuple[np.ndarray | None, list[str], np.ndarray | None, np.ndarray | None, str]:
    """``(kp2d (C, F, J, 3) on the session's index rows, joint names, points (F, 17, 3), confidence (F, 17),
    where from)``: the offline results when present, else the live ones."""
    slots = session.slots
    offline = session.folder / "offline"
    if (offline / "keypoints2d.npz").is_file() and (offline / "points3d.npz").is_file():
        from posestudio.core.keypoints_file import read_keypoints2d, read_points3d

        kp = read_keypoints2d(offline / "keypoints2d.npz")
        pts = read_points3d(offline / "points3d.npz")
        order = [kp.camera_names.index(c) if c in kp.camera_names else -1 for c in session.cameras]
        k2 = np.full((len(session.cameras), len(slots), len(kp.joint_names), 3), np.nan)
        n = min(len(slots), kp.n_frames)
        for c, o in enumerate(order):
            if o >= 0:
                k2[c, :n] = kp.keypoints[o, :n]
        p3 = np.full((len(slots), 17, 3), np.nan)
        cf = np.zeros((len(slots), 17))
        n3 = min(len(slots), len(pts.points3d))
        p3[:n3], cf[:n3] = pts.points3d[:n3], pts.confidence[:n3]
        return k2, list(kp.joint_names), p3, cf, "offline"
    where = {int(s): i for i, s in enumerate(slots)}
    k2, names, p3, cf = None, [], None, None
    live2d = session.results("keypoints2d.npz")
    if live2d is not None:
        names = [str(n) for n in live2d["joint_names"]]
        k2 = np.full((len(session.cameras), len(slots), len(names), 3), np.nan)
        for f, s in enumerate(live2d["slots"]):
            if int(s) in where:
                k2[:, where[int(s)]] = live2d["keypoints"][:, f]
    live3d = session.results("points3d.npz")
    if live3d is not None:
        p3 = np.full((len(slots), 17, 3), np.nan)
        cf = np.zeros((len(slots), 17))
        for f, s in enumerate(live3d["slots"]):
            if int(s) in where:
                p3[where[int(s)]], cf[where[int(s)]] = live3d["points3d"][f], live3d["confidence"][f]
    return k2, names, p3, cf, "live"


def export_dataset(session_folder: str | Path, out: str | Path, min_confidence: float = 0.3) -> dict[str, Any]:
    """Write the dataset (see the module docstring); returns counts ``{"images", "annotations", "frames", "source"}``.

    Raises:
        InputError: not a session, or OUT exists and is not empty.
    """
    from posestudio.core.files import json_text, write_npz_atomic, write_text_atomic
    from posestudio.models.keypoints import COCO17
    from posestudio.reconstruction.live.session_reader import open_session

    session = open_session(session_folder)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"--out {out}: exists and is not empty; expected a new folder")
    kp2d, names, points, confidence, source = _results(session)
    coco = None if kp2d is None else coco_from(kp2d, names)                  # (C, F, 17, 3)
    images, annotations = [], []
    for c, cam in enumerate(session.cameras):
        (out / "images" / cam).mkdir(parents=True, exist_ok=True)
        for f, row in enumerate(session.index):
            path = session.frame_path(row, cam)
            if path is None:
                continue
            name = f"images/{cam}/{row.slot:08d}{path.suffix}"
            try:
                os.link(path, out / name)
            except OSError:
                shutil.copyfile(path, out / name)
            entry = row.cameras[cam] or {}
            width, height = entry.get("width"), entry.get("height")
            if width is None:
                width, height = session.rig[cam].image_size
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": name, "width": int(width), "height": int(height),
                           "camera": cam, "slot": row.slot, "frame": f, "studio_time_ns": row.studio_time_ns})
            if coco is None:
                continue
            kp = coco[c, f]
            seen = np.isfinite(kp[:, :2]).all(axis=1) & (np.nan_to_num(kp[:, 2]) >= min_confidence)
            if not seen.any():
                continue
            flat = np.zeros((17, 3))
            flat[seen, :2] = kp[seen, :2]
            flat[seen, 2] = 2
            x0, y0 = kp[seen, :2].min(axis=0)
            x1, y1 = kp[seen, :2].max(axis=0)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "keypoints": [round(float(v), 2) for v in flat.reshape(-1)],
                                "num_keypoints": int(seen.sum()),
                                "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                                "area": round(float((x1 - x0) * (y1 - y0)), 2)})
    links = [[COCO17.index(a) + 1, COCO17.index(b) + 1] for a, b in COCO17.bones]
    doc = {"info": {"description": f"PoseStudio session {session.metadata.get('session', '')}",
                    "source": source, "fps": session.fps, "format": "coco-person-keypoints"},
           "images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.joints),
                           "skeleton": links}]}
    write_text_atomic(out / "annotations.json", json.dumps(doc))
    if points is not None:
        write_npz_atomic(out / "points3d.npz", points3d=points, confidence=confidence,
                         joint_names=np.array(["pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
                                               "spine", "thorax", "neck", "head", "l_shoulder", "l_elbow", "l_wrist",
                                               "r_shoulder", "r_elbow", "r_wrist"]),
                         slots=session.slots, studio_time_ns=session.times_ns, fps=np.float64(session.fps))
    session.rig.save(out / "rig.toml")
    cams = {cam.name: {"image_size": list(cam.image_size), "model": cam.model, "K": cam.matrix.tolist(),
                       "dist": cam.dist.tolist(), "R": cam.rotation.tolist(), "t": cam.translation.tolist(),
                       "time_offset_s": cam.time_offset} for cam in session.rig.cameras}
    write_text_atomic(out / "cameras.json", json_text(cams))
    counts = {"images": len(images), "annotations": len(annotations), "frames": len(session.index),
              "cameras": len(session.cameras), "source": source, "points3d": points is not None}
    write_text_atomic(out / "README.md", README.format(**counts, fps=session.fps, session=session.folder.name,
                                                       status=session.metadata.get("status")))
    return counts


README = """# PoseStudio dataset: session {session}

{frames} frame sets recorded at {fps:g} sets/s by {cameras} cameras (recording status: {status});
2D and 3D from the {source} reconstruction.

| file | content |
|---|---|
| `images/<camera>/<slot>.jpg` | each camera's frame of each recorded set, as captured (JPEG; PNG for raw frames); a camera missing from a set has no file |
| `annotations.json` | COCO person keypoints: {images} images (`camera`, `slot`, `frame`, `studio_time_ns` added to each), {annotations} annotations, one per image where the person was found; `keypoints` are 17 x (x, y, v) in COCO's order (`categories[0].keypoints`), pixels of the full frame, v = 2 labelled, v = 0 not labelled (x = y = 0) |
| `points3d.npz` | `points3d` (frames, 17, 3) metres in the rig's world frame (right-handed, Z up), H36M17 joints (`joint_names`), NaN where unknown; `confidence` (frames, 17) in [0, 1]; `slots`, `studio_time_ns` (frames,) to match images; `fps` |
| `rig.toml` | the calibrated rig (PoseStudio's rig file) |
| `cameras.json` | per camera: `K` (3x3, pixels), `dist` (OpenCV order k1 k2 p1 p2 k3 ..., or 4 fisheye coefficients with `model` "fisheye"), `R` (3x3) and `t` (3, metres) world-to-camera (x_cam = R x_world + t), `image_size` (width, height), `time_offset_s` |

The 2D comes from the detector (BlazePose or TCE) as that run saw it, mapped to COCO's 17 joints by
name; from an H36M17 layout the eyes, ears and nose are not labelled. They are detector output, not
manual labels; the 3D is the multi-view reconstruction. Frame `f` of `points3d.npz` is the `f`-th
recorded set (`frame` in each image entry).
"""


def run(args: argparse.Namespace) -> int:
    counts = export_dataset(args.session, args.out, args.min_confidence)
    print(f"posestudio dataset: {counts['images']} images, {counts['annotations']} annotations, {counts['frames']} "
          f"frame sets ({counts['source']} results) written to {args.out}")
    return 0
