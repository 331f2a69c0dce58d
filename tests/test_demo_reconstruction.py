"""Step 4 of ``posestudio demo``: a synthetic performance reconstructed through a calibrated rig."""

from __future__ import annotations

import argparse
import json

from posestudio.commands.demo import _reconstruct_performance
from posestudio.core.keypoints_file import read_points3d
from posestudio.synthetic import make_studio_rig


def test_demo_reconstructs_the_performance_and_writes_the_take(tmp_path, capsys) -> None:
    truth = make_studio_rig(4, (1920, 1080), seed=0)
    calibrated = make_studio_rig(4, (1920, 1080), seed=0)  # a perfect calibration, in the same frame
    _reconstruct_performance(argparse.Namespace(out=tmp_path, seed=0), truth, calibrated)
    out = capsys.readouterr().out
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines() if line.startswith(("triangulation", "full"))}
    tri_mpjpe, full_mpjpe = float(rows["triangulation alone"][0]), float(rows["full pipeline"][0])
    assert full_mpjpe < tri_mpjpe and full_mpjpe < 10.0, out
    assert float(rows["full pipeline"][3]) > 99.0                              # coverage, %
    points = read_points3d(tmp_path / "take" / "points3d.npz")
    assert points.points3d.shape == (150, 17, 3)
    report = json.loads((tmp_path / "take" / "report.json").read_text())
    assert report["fraction_reconstructed"] > 0.99 and report["cameras"] == truth.names
