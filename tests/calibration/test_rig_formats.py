"""Rig import/export: round trips, aniposelib compatibility, malformed files (synthetic data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posestudio.calibration.rig_formats import detect_format, export_rig, import_rig
from posestudio.cli import main
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError
from posestudio.core.rotations import rodrigues_to_matrix


def make_rig(n: int = 3, fisheye_last: bool = False, skew: float = 0.3) -> CameraRig:
    rng = np.random.default_rng(7)
    cams = []
    for i in range(n):
        fish = fisheye_last and i == n - 1
        k = np.array([[1400.0 + 10 * i, skew, 955.5 + i], [0, 1402.5, 540.25], [0, 0, 1]])
        dist = rng.normal(0, 0.01, 4) if fish else rng.normal(0, 0.05, 5)
        rot = rodrigues_to_matrix(rng.normal(0, 1.0, 3))
        cams.append(Camera(f"cam{i}", (1920, 1080), k, dist, rot, rng.normal(0, 2.0, 3),
                           "fisheye" if fish else "pinhole"))
    return CameraRig(cams, {"world_frame": "test"})


def assert_same(a: CameraRig, b: CameraRig, tol: float = 1e-9) -> None:
    assert a.names == b.names
    for ca, cb in zip(a, b):
        assert ca.image_size == cb.image_size and ca.model == cb.model
        for x, y in ((ca.matrix, cb.matrix), (ca.dist, cb.dist), (ca.rotation, cb.rotation),
                     (ca.translation, cb.translation)):
            np.testing.assert_allclose(x, y, atol=tol, rtol=0)


@pytest.mark.parametrize("fmt", ["anipose", "pose2sim"])
def test_round_trip_through_format(tmp_path: Path, fmt: str) -> None:
    rig = make_rig(fisheye_last=True)
    rig.save(tmp_path / "rig.toml")
    export_rig(import_rig(tmp_path / "rig.toml"), tmp_path / f"{fmt}.toml", fmt)
    back_path = tmp_path / "back.toml"
    export_rig(import_rig(tmp_path / f"{fmt}.toml", fmt), back_path, "posestudio")
    assert_same(rig, import_rig(back_path))


def test_detects_formats(tmp_path: Path) -> None:
    rig = make_rig()
    rig.save(tmp_path / "rig.toml")
    export_rig(rig, tmp_path / "calibration.toml", "anipose")
    export_rig(rig, tmp_path / "Calib.toml", "pose2sim")
    assert detect_format(tmp_path / "rig.toml") == "posestudio"
    assert detect_format(tmp_path / "calibration.toml") == "anipose"
    assert detect_format(tmp_path / "Calib.toml") == "pose2sim"
    assert_same(rig, import_rig(tmp_path / "calibration.toml"))


def test_ten_cameras_keep_order_in_aniposelib_sorting(tmp_path: Path) -> None:
    rig = make_rig(12)
    export_rig(rig, tmp_path / "a.toml", "anipose")
    assert "[cam_09]" in (tmp_path / "a.toml").read_text()
    assert import_rig(tmp_path / "a.toml").names == rig.names


def test_anipose_millimetre_file(tmp_path: Path) -> None:
    rig = make_rig(2)
    export_rig(rig, tmp_path / "a.toml", "anipose")
    text = (tmp_path / "a.toml").read_text().replace('units = "m"', 'units = "mm"')
    (tmp_path / "a.toml").write_text(text)
    np.testing.assert_allclose(import_rig(tmp_path / "a.toml")[0].translation, rig[0].translation / 1000)


ANIPOSELIB_ABSENT = "aniposelib is a benchmark-only peer (make bench installs it)"


def test_anipose_export_loads_in_aniposelib(tmp_path: Path) -> None:
    """aniposelib reads our export and projects points where we do (same cameras, same names)."""
    pytest.importorskip("aniposelib", reason=ANIPOSELIB_ABSENT)
    from aniposelib.cameras import CameraGroup

    rig = make_rig(3, fisheye_last=True, skew=0.0)  # cv2.projectPoints ignores K[0, 1]
    export_rig(rig, tmp_path / "calibration.toml", "anipose")
    group = CameraGroup.load(str(tmp_path / "calibration.toml"))
    assert [c.get_name() for c in group.cameras] == rig.names
    rng = np.random.default_rng(1)
    for ours, theirs in zip(rig, group.cameras):
        assert tuple(theirs.get_size()) == ours.image_size
        # points 2-5 m in front of this camera, within its field of view (fisheye included)
        depth = rng.uniform(2.0, 5.0, 20)
        in_camera = np.c_[rng.uniform(-0.4, 0.4, (20, 2)) * depth[:, None], depth]
        pts = (in_camera - ours.translation) @ ours.rotation  # camera to world: R^T (x - t)
        expected = ours.project(pts)
        assert np.isfinite(expected).all()
        np.testing.assert_allclose(theirs.project(pts).reshape(-1, 2), expected, atol=1e-6)


def test_anipose_file_written_by_aniposelib_imports(tmp_path: Path) -> None:
    pytest.importorskip("aniposelib", reason=ANIPOSELIB_ABSENT)
    from aniposelib.cameras import Camera as ACamera
    from aniposelib.cameras import CameraGroup

    cam = ACamera(matrix=[[1000, 0, 640], [0, 1000, 360], [0, 0, 1]], dist=[0.1, -0.01, 0, 0, 0],
                  size=(1280, 720), rvec=[0.1, 0.2, 0.3], tvec=[0.5, 0.0, 2.0], name="A")
    CameraGroup([cam]).dump(str(tmp_path / "c.toml"))
    rig = import_rig(tmp_path / "c.toml")
    assert rig.names == ["A"] and rig[0].image_size == (1280, 720)
    np.testing.assert_allclose(rig[0].rvec, [0.1, 0.2, 0.3], atol=1e-12)


CALISCOPE = """
[cam_0]
cam_id = 0
size = [1280, 720]
matrix = [[900.0, 0.0, 640.0], [0.0, 901.0, 360.0], [0.0, 0.0, 1.0]]
distortions = [-0.3, 0.05, 0.0, 0.0, 0.06]
ignore = false
translation = [0.1, 0.0, 1.2]
rotation = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]

[cam_1]
cam_id = 1
size = [1280, 720]
matrix = [[900.0, 0.0, 640.0], [0.0, 901.0, 360.0], [0.0, 0.0, 1.0]]
distortions = [-0.3, 0.05, 0.0, 0.0, 0.06]
ignore = true

[cam_2]
cam_id = 2
size = [1280, 720]
matrix = [[900.0, 0.0, 640.0], [0.0, 901.0, 360.0], [0.0, 0.0, 1.0]]
distortions = [-0.3, 0.05, 0.0, 0.0, 0.06]
ignore = false

[charuco]
columns = 4
"""


def test_caliscope_skips_ignored_and_uncalibrated(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(CALISCOPE)
    rig = import_rig(tmp_path / "config.toml")
    assert rig.names == ["cam_0"]
    assert set(rig.metadata["skipped"]) == {"cam_1", "cam_2"}
    assert "not calibrated" in rig.metadata["skipped"]["cam_2"]


@pytest.mark.parametrize("fmt, text, needle", [
    ("anipose", "[cam_0]\nname='a'\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0]]\ndistortions=[0,0,0,0,0]\n"
                "rotation=[0,0,0]\ntranslation=[0,0,0]\n", "'matrix' must have shape (3, 3)"),
    ("anipose", "[cam_0]\nname='a'\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\n"
                "distortions=[0,0,0,0,0]\ntranslation=[0,0,0]\n", "has no 'rotation'"),
    ("pose2sim", "[cam_01]\nname='a'\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\n"
                 "distortions=[0,0,0]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n", "'distortions' must be a list"),
    ("caliscope", "[cam_0]\ncam_id=0\nsize=[10,10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\n"
                  "distortions=[0,0,0,0,0]\nrotation=[[2,0,0],[0,1,0],[0,0,1]]\ntranslation=[0,0,0]\n",
     "not a rotation matrix"),
    ("anipose", "this is = = not toml", "not a valid TOML file"),
    ("qualisys", "<calibration><cameras>", "not a valid XML file"),
    ("qualisys", "<calibration><cameras><camera serial='c1'><fov_video left='0' top='0' right='9' "
                 "bottom='9'/></camera></cameras></calibration>", "has no <intrinsic>"),
])
def test_malformed_files_name_file_and_field(tmp_path: Path, fmt: str, text: str, needle: str) -> None:
    path = tmp_path / "bad_file.txt"
    path.write_text(text)
    with pytest.raises(RigFileError) as info:
        import_rig(path, fmt)
    assert str(path) in str(info.value) and needle in str(info.value)


def test_unknown_content_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("a = 1\n")
    with pytest.raises(RigFileError, match="no known rig format"):
        import_rig(path)


def test_cli_convert_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rig = make_rig()
    rig.save(tmp_path / "rig.toml")
    assert main(["rig", "convert", str(tmp_path / "rig.toml"), str(tmp_path / "a.toml"), "--to", "anipose"]) == 0
    assert main(["rig", "convert", str(tmp_path / "a.toml"), str(tmp_path / "b.toml"), "--to", "posestudio",
                 "--from", "anipose"]) == 0
    assert_same(rig, import_rig(tmp_path / "b.toml"))
    assert main(["rig", "convert", str(tmp_path / "missing.toml"), str(tmp_path / "c.toml"), "--to", "anipose"]) == 2
    assert "missing.toml" in capsys.readouterr().err
