"""The reconstruction report: sums over runs of frames, written as documented JSON."""

from __future__ import annotations

import json

import numpy as np

from posestudio.core.pose_metrics import reprojection_errors
from posestudio.core.skeleton import bone_length_cv
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.options import ReconstructionOptions
from posestudio.reconstruction.report import FORMAT, ReportTally
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body


def _counted(chunk: int):
    rig = make_studio_rig(3, (1920, 1080), seed=3)
    body = walking_body(60, start=(-0.5, 0.0))
    rng = np.random.default_rng(0)
    points = body + rng.normal(0.0, 0.005, body.shape)
    points[10:20, 13] = np.nan
    kp = simulate_detections(rig, body, DetectorErrors(seed=2)).keypoints
    kp[2] = np.nan                                                   # the third camera sees nothing
    inliers = np.isfinite(kp[..., 0]) & (rng.random(kp.shape[:3]) < 0.9)
    masks = [rng.random(points.shape[:2]) < p for p in (0.8, 0.05, 0.05, 0.05, 0.02)]
    excluded = rng.random((3, 60)) < 0.1
    tally = ReportTally(rig)
    for s in range(0, 60, chunk):
        part = slice(s, s + chunk)
        tally.add(points[part], kp[:, part], inliers[:, part], *(m[part] for m in masks), excluded[:, part])
    report = tally.report(30.0, "coco17", False, {"filter": "test"}, ReconstructionOptions(prior=None))
    return rig, points, kp, inliers, masks, excluded, report


def _leaves(value, key=""):
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _leaves(item, f"{key}.{name}").items()}
    return {key: value}


def test_sums_over_runs_of_frames_equal_the_take_at_once() -> None:
    rig, points, kp, inliers, masks, excluded, report = _counted(7)
    _, _, _, _, _, _, whole = _counted(60)
    runs, once = _leaves(report.__dict__), _leaves(whole.__dict__)
    assert runs.keys() == once.keys()
    for key, value in runs.items():
        if isinstance(value, float):
            np.testing.assert_allclose(value, once[key], rtol=1e-12, err_msg=key)
        else:
            assert value == once[key], key
    err = np.where(inliers, reprojection_errors(points, kp[..., :2], rig), np.nan)
    assert np.isclose(report.reprojection_rms_px, np.sqrt(np.nanmean(err**2)))
    assert np.isclose(report.reprojection_rms_px_per_camera["cam0"], np.sqrt(np.nanmean(err[0] ** 2)))
    assert np.isclose(report.bone_length_cv, bone_length_cv(points, H36M17.bone_indices), rtol=1e-12)
    assert report.frames == 60 and report.fraction_reconstructed == np.isfinite(points).all(-1).mean()
    assert report.fraction_triangulated == masks[0].mean() and report.two_view_joints_dropped_by_bone_lengths == masks[4].sum()
    assert report.frames_excluded_per_camera_as_another_person == dict(zip(rig.names, excluded.sum(1).tolist()))
    assert report.outlier_views_rejected == int((np.isfinite(kp[..., 0]) & ~inliers & masks[0][None]).sum())


def test_report_json_has_the_documented_shape(tmp_path) -> None:
    *_, report = _counted(60)
    report.write(tmp_path / "report.json")
    text = (tmp_path / "report.json").read_text()
    doc = json.loads(text)                                          # strict JSON: no NaN
    assert list(doc)[:2] == ["format", "format_version"] and doc["format"] == FORMAT and doc["format_version"] == 1
    assert doc["reprojection_rms_px_per_camera"]["cam2"] is None    # a camera that saw nothing: NaN -> null
    assert doc["prior"] is None and doc["mode"] == "offline" and doc["input_layout"] == "coco17"
    assert set(doc) == {
        "format", "format_version", "frames", "fps", "cameras", "input_layout", "output_layout", "mode",
        "reprojection_rms_px", "reprojection_rms_px_all_detections", "reprojection_median_px_all_detections",
        "reprojection_rms_px_per_camera",
        "reprojection_rms_px_per_joint", "reprojection_rms_px_per_camera_joint", "bone_length_cv",
        "fraction_reconstructed", "fraction_reconstructed_per_joint", "fraction_triangulated",
        "fraction_gap_filled", "fraction_carried_along_rays", "fraction_filled_by_prior", "prior",
        "fraction_filled_by_lifting", "lifting", "outlier_views_rejected", "smoothing", "triangulation", "two_view_joints_dropped_by_bone_lengths",
        "frames_excluded_per_camera_as_another_person", "frames_with_left_right_swapped_per_camera"}
    assert set(doc["reprojection_rms_px_per_camera_joint"]["cam0"]) == set(H36M17.joints)
    assert "NaN" not in text
