"""``posestudio export``: every format written from a small synthetic take and read back, the axes,
``--fps``, the refusals, and all-or-nothing writing."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import warnings
from pathlib import Path

import c3d
import numpy as np
import pytest

from posestudio.cli import main
from posestudio.core.bvh import Y_UP_TO_Z_UP, read_bvh
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D, write_points3d
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.export import FORMATS, export_take, read_take, resample, to_up_axis
from posestudio.reconstruction.export import atomic as atomic_module
from posestudio.reconstruction.export.c3d_file import RESIDUAL_RANGE_MM, point_scale
from posestudio.reconstruction.export.take import Z_UP_TO_Y_UP
from posestudio.reconstruction.export.trc import TRC_KEYS
from posestudio.reconstruction.take_folder import people, take_file
from posestudio.synthetic.body_motion import walking_body

FPS = 30.0
N_FRAMES = 8
NAMES = list(H36M17.joints)
J = len(NAMES)
HIGH, LOW = 0.9, 0.25                       # the take's two confidences
MISSING = [(2, 3), (5, 16), (0, 0)]         # (frame, joint) the reconstruction could not place


def _take() -> Points3D:
    """(8, 17, 3) metres, Z up: every axis different (so a swapped axis shows), three points missing,
    joints 5 and 11 at the low confidence."""
    f = np.arange(N_FRAMES, dtype=float)[:, None]
    j = np.arange(J, dtype=float)[None, :]
    pts = np.stack([0.1 * j + 0.01 * f + 0.123456, -0.5 + 0.02 * j - 0.03 * f, 1.0 + 0.05 * j + 0.004 * f], axis=-1)
    conf = np.full((N_FRAMES, J), HIGH)
    conf[:, [5, 11]] = LOW
    for frame, joint in MISSING:
        pts[frame, joint] = np.nan
        conf[frame, joint] = 0.0
    return Points3D(pts, conf, NAMES, FPS)


@pytest.fixture()
def take_dir(tmp_path: Path) -> Path:
    """A ``posestudio reconstruct``-like output folder holding the synthetic take."""
    folder = tmp_path / "take"
    write_points3d(folder / "points3d.npz", _take())
    return folder


def _export(*args: str | Path) -> int:
    return main(["export", *[str(a) for a in args]])


def _known() -> np.ndarray:
    known = np.ones((N_FRAMES, J), bool)
    for frame, joint in MISSING:
        known[frame, joint] = False
    return known


# ---------------------------------------------------------------------------------------------
# TRC


def _opensim_fields(line: str) -> list[str]:
    """A TRC line split as OpenSim's FileAdapter::tokenize does: at every tab, empty fields kept,
    nothing after a final tab."""
    fields = line.rstrip("\r\n").split("\t")
    return fields[:-1] if fields and fields[-1] == "" and line.rstrip("\r\n").endswith("\t") else fields


def _read_trc(path: Path) -> dict:
    """A small TRC reader following OpenSim's TRCFileAdapter: header lines, then rows of exactly
    2 + 3 * NumMarkers fields (an empty coordinate is a missing marker: NaN)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    keys = [k for k in _opensim_fields(lines[1]) if k]
    values = [v for v in _opensim_fields(lines[2]) if v]
    meta = dict(zip(keys, values))
    n_markers = int(meta["NumMarkers"])
    data_lines = [ln for ln in lines[5:] if ln.strip()]
    rows = [_opensim_fields(ln) for ln in data_lines]
    assert all(len(r) == 2 + 3 * n_markers for r in rows), "a row's field count differs from OpenSim's"
    xyz = np.array([[float(v) if v != "" else np.nan for v in r[2:]] for r in rows]).reshape(len(rows), n_markers, 3)
    return {"lines": lines, "meta": meta, "keys": keys, "frame": [int(r[0]) for r in rows],
            "time": np.array([float(r[1]) for r in rows]), "xyz": xyz,
            "names": [n for n in _opensim_fields(lines[3]) if n][2:]}


def test_trc_has_opensims_header_layout_and_y_up_millimetres(take_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "take.trc"
    assert _export(take_dir, "--trc", out) == 0
    trc = _read_trc(out)
    lines = trc["lines"]
    assert lines[0] == "PathFileType\t4\t(X/Y/Z)\ttake.trc"
    assert lines[1] == "\t".join(TRC_KEYS)
    assert trc["keys"] == ["DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate",
                           "OrigDataStartFrame", "OrigNumFrames"]
    assert lines[2].split("\t") == ["30", "30", str(N_FRAMES), str(J), "mm", "30", "1", str(N_FRAMES)]
    assert lines[3] == "Frame#\tTime\t" + "".join(f"{n}\t\t\t" for n in NAMES)
    assert lines[4] == "\t\t" + "".join(f"X{i}\tY{i}\tZ{i}\t" for i in range(1, J + 1))
    assert lines[5] == ""                   # OpenSim's own writer leaves one blank line before the data
    assert trc["names"] == NAMES
    assert trc["frame"] == list(range(1, N_FRAMES + 1))
    np.testing.assert_allclose(trc["time"], np.arange(N_FRAMES) / FPS, atol=1e-6)
    world = _take().points3d
    expected = np.stack([world[..., 0], world[..., 2], -world[..., 1]], axis=-1) * 1000.0   # Y up, mm
    known = _known()
    assert np.isnan(trc["xyz"][~known]).all()
    np.testing.assert_allclose(trc["xyz"][known], expected[known], atol=1e-4)
    # the last marker missing still leaves the row's field count right (checked by _read_trc too)
    row = lines[6 + 5]
    assert row.endswith("\t\t\t\t") and len(_opensim_fields(row)) == 2 + 3 * J


def test_trc_units_and_up_options(take_dir: Path, tmp_path: Path) -> None:
    assert _export(take_dir, "--trc", tmp_path / "m.trc", "--units", "m", "--up", "z") == 0
    trc = _read_trc(tmp_path / "m.trc")
    assert trc["meta"]["Units"] == "m"
    known = _known()
    np.testing.assert_allclose(trc["xyz"][known], _take().points3d[known], atol=1e-7)


# ---------------------------------------------------------------------------------------------
# C3D


def _read_c3d(path: Path) -> dict:
    """Labels, rate, units and (F, J, 5) points (x, y, z, residual, cameras) through the c3d library."""
    with warnings.catch_warnings(), open(path, "rb") as handle:
        warnings.simplefilter("ignore")          # "No analog data found in file."
        reader = c3d.Reader(handle)
        frames = np.array([p for _, p, _ in reader.read_frames()])
        return {"labels": [s.strip() for s in reader.point_labels], "rate": reader.point_rate,
                "units": reader.get("POINT:UNITS").string_value.strip(), "scale": reader.point_scale,
                "first": reader.first_frame, "points": frames,
                "screen": (reader.get("POINT:X_SCREEN").string_value, reader.get("POINT:Y_SCREEN").string_value)}


def test_c3d_reads_back_labels_rate_millimetres_and_missing_points(take_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "take.c3d"
    assert _export(take_dir, "--c3d", out) == 0
    back = _read_c3d(out)
    assert back["labels"] == NAMES
    assert back["rate"] == pytest.approx(FPS)
    assert back["units"] == "mm"
    assert back["scale"] < 0                          # floating-point points
    assert back["screen"] == ("+X", "+Z")             # world frame, Z up
    pts = back["points"]
    assert pts.shape == (N_FRAMES, J, 5)
    known = _known()
    expected = _take().points3d * 1000.0
    np.testing.assert_allclose(pts[..., :3][known], expected[known], atol=1e-3)
    assert (pts[..., 3][~known] == -1).all()          # missing: residual -1
    # known points: residual = RESIDUAL_RANGE_MM * (1 - confidence), at least one step, never 0
    step = abs(back["scale"])
    residual = pts[..., 3][known]
    conf = _take().confidence[known]
    assert (residual >= step - 1e-6).all()
    np.testing.assert_allclose(residual, RESIDUAL_RANGE_MM * (1 - conf), atol=step / 2 + 1e-6)
    assert len(np.unique(np.round(residual, 3))) == 2      # the two confidences stay apart


def test_c3d_opens_in_ezc3d(take_dir: Path, tmp_path: Path) -> None:
    ezc3d = pytest.importorskip("ezc3d", reason="ezc3d (pyomeca) not installed: pip install ezc3d")
    out = tmp_path / "take.c3d"
    assert _export(take_dir, "--c3d", out, "--up", "y") == 0
    doc = ezc3d.c3d(str(out))
    point = doc["parameters"]["POINT"]
    assert list(point["LABELS"]["value"]) == NAMES
    assert point["RATE"]["value"][0] == pytest.approx(FPS)
    assert point["UNITS"]["value"][0] == "mm"
    xyz = doc["data"]["points"][:3].transpose(2, 1, 0)        # (3, J, F) -> (F, J, 3)
    known = _known()
    expected = to_up_axis(_take().points3d, "y") * 1000.0
    np.testing.assert_allclose(xyz[known], expected[known], atol=1e-3)
    assert np.isnan(xyz[~known]).all()                         # ezc3d: a point with residual -1 is NaN
    # (ezc3d 1.7.2 reads a float file's residual from the camera byte: pyomeca/ezc3d#386; not compared)


def test_c3d_point_scale_follows_the_coordinates() -> None:
    assert point_scale(np.array([[1000.0, -2000.0, np.nan]])) == pytest.approx(0.1)
    assert point_scale(np.array([[9600.0, 0.0, 0.0]])) == pytest.approx(0.3)


# ---------------------------------------------------------------------------------------------
# CSV and JSON


def test_csv_rows_per_frame_with_named_columns(take_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "take.csv"
    assert _export(take_dir, "--csv", out) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[:2] == ["frame", "time_s"]
    assert header[2:6] == ["pelvis_x", "pelvis_y", "pelvis_z", "pelvis_confidence"]
    assert header[-4:] == ["r_wrist_x", "r_wrist_y", "r_wrist_z", "r_wrist_confidence"]
    assert len(header) == 2 + 4 * J and len(rows) == 1 + N_FRAMES
    body = rows[1:]
    assert [int(r[0]) for r in body] == list(range(N_FRAMES))
    np.testing.assert_allclose([float(r[1]) for r in body], np.arange(N_FRAMES) / FPS, atol=1e-6)
    cells = np.array([r[2:] for r in body], dtype=object).reshape(N_FRAMES, J, 4)
    known = _known()
    assert (cells[..., :3][~known] == "").all()
    xyz = np.array([[[float(v) for v in c[:3]] if c[0] != "" else [np.nan] * 3 for c in row] for row in cells])
    np.testing.assert_allclose(xyz[known], _take().points3d[known], atol=1e-7)   # metres, Z up by default
    np.testing.assert_allclose(cells[..., 3].astype(float), _take().confidence, atol=1e-6)


def test_json_document(take_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "take.json"
    assert _export(take_dir, "--json", out, "--up", "y") == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["format"] == "posestudio-skeleton-json" and doc["format_version"] == 1
    assert doc["fps"] == FPS and doc["units"] == "m" and doc["up"] == "y"
    assert doc["joint_names"] == NAMES
    assert [tuple(b) for b in doc["bones"]] == list(H36M17.bones)
    assert len(doc["frames"]) == N_FRAMES
    expected = to_up_axis(_take().points3d, "y")
    known = _known()
    for k, frame in enumerate(doc["frames"]):
        assert frame["frame"] == k and frame["time_s"] == pytest.approx(k / FPS, abs=1e-6)
        for j, joint in enumerate(frame["joints"]):
            if known[k, j]:
                np.testing.assert_allclose(joint, expected[k, j], atol=1e-7)
            else:
                assert joint is None
        np.testing.assert_allclose(frame["confidence"], _take().confidence[k], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Axes and frame rate


def test_up_axis_turn_is_right_handed_and_puts_world_z_on_file_y() -> None:
    assert np.linalg.det(Z_UP_TO_Y_UP) == pytest.approx(1.0)
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ Z_UP_TO_Y_UP.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ [0, 0, 1], [0, 1, 0])       # world up -> file Y
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ [1, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(Z_UP_TO_Y_UP @ Y_UP_TO_Z_UP, np.eye(3), atol=1e-12)   # inverse of BVH reading
    p = np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_allclose(to_up_axis(p, "y")[0], [1.0, 3.0, -2.0])
    np.testing.assert_allclose(to_up_axis(p, "z")[0], p[0])
    assert np.isnan(to_up_axis(p, "y")[1]).all()
    with pytest.raises(InputError, match="up axis"):
        to_up_axis(p, "x")


def test_resample_interpolates_positions_linearly() -> None:
    take = _take()
    up = resample(take, 60.0)
    assert up.fps == 60.0 and up.points3d.shape == (2 * N_FRAMES - 1, J, 3)
    np.testing.assert_array_equal(up.points3d[::2], take.points3d)               # on a frame: a copy
    mid = 0.5 * (take.points3d[:-1] + take.points3d[1:])
    np.testing.assert_allclose(up.points3d[1::2], mid, atol=1e-12)                # NaN beside a gap stays NaN
    assert np.isnan(up.points3d[3, 3]).all() and np.isnan(up.points3d[5, 3]).all()
    assert up.confidence[3, 3] == 0.0
    np.testing.assert_allclose(up.confidence[1, 5], LOW)
    down = resample(take, 25.0)               # 7/30 s long: frames at 0, 0.04, ..., 0.2 s
    assert down.points3d.shape[0] == 6
    np.testing.assert_allclose(down.points3d[1, 1], take.points3d[1, 1] * 0.8 + take.points3d[2, 1] * 0.2)  # 1.2 frames


def test_fps_option_resamples_every_point_format(take_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fast"
    assert _export(take_dir, "--fps", "60", "--trc", out / "a.trc", "--c3d", out / "a.c3d", "--csv", out / "a.csv",
                   "--json", out / "a.json") == 0
    trc = _read_trc(out / "a.trc")
    n = 2 * N_FRAMES - 1
    assert trc["meta"]["DataRate"] == "60" and trc["meta"]["NumFrames"] == str(n)
    assert trc["meta"]["OrigDataRate"] == "30" and trc["meta"]["OrigNumFrames"] == str(N_FRAMES)
    np.testing.assert_allclose(trc["time"], np.arange(n) / 60.0, atol=1e-6)
    expected = to_up_axis(resample(_take(), 60.0).points3d, "y") * 1000.0
    np.testing.assert_allclose(trc["xyz"], expected, atol=1e-4)
    c3d_back = _read_c3d(out / "a.c3d")
    assert c3d_back["rate"] == pytest.approx(60.0) and c3d_back["points"].shape[0] == n
    doc = json.loads((out / "a.json").read_text())
    assert doc["fps"] == 60.0 and len(doc["frames"]) == n
    assert len((out / "a.csv").read_text().splitlines()) == 1 + n


# ---------------------------------------------------------------------------------------------
# The command line, refusals, all-or-nothing


def test_several_formats_in_one_call_print_one_line_each(take_dir: Path, tmp_path: Path, capsys) -> None:
    files = {name: tmp_path / "all" / f"take.{name}" for name in ("trc", "c3d", "csv", "json")}
    args = [a for name, path in files.items() for a in (f"--{name}", path)]
    assert _export(take_dir, *args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    for line, (name, path) in zip(lines, files.items()):
        assert str(path) in line and f"{N_FRAMES} frames" in line and f"{J} " in line
        assert path.is_file()
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(p.name for p in files.values())


def test_person_option_reads_that_persons_take(take_dir: Path, tmp_path: Path, capsys) -> None:
    other = _take()
    other.points3d[..., 2] += 1.0
    write_points3d(take_dir / "people" / "person_1" / "points3d.npz", other)
    assert _export(take_dir, "--person", "1", "--json", tmp_path / "p1.json") == 0
    doc = json.loads((tmp_path / "p1.json").read_text())
    assert doc["frames"][1]["joints"][1][2] == pytest.approx(other.points3d[1, 1, 2], abs=1e-7)
    assert _export(take_dir, "--person", "4", "--json", tmp_path / "p4.json") == 2
    err = capsys.readouterr().err
    assert "no such person" in err and "person_1" in err
    assert not (tmp_path / "p4.json").exists()


def test_take_folder_resolves_the_subject_and_each_person(take_dir: Path, tmp_path: Path) -> None:
    """The one resolution of --person that 'posestudio export' and 'posestudio view' share."""
    for k in (10, 2):
        write_points3d(take_dir / "people" / f"person_{k}" / "points3d.npz", _take())
    (take_dir / "people" / "person_5").mkdir()                       # no points3d.npz: not a person
    (take_dir / "people" / "person_x").mkdir()
    assert people(take_dir) == [2, 10] and people(tmp_path / "nowhere") == []
    assert take_file(take_dir) == take_dir / "points3d.npz"
    assert take_file(take_dir, 10) == take_dir / "people" / "person_10" / "points3d.npz"
    with pytest.raises(InputError, match=r"person_5/points3d.npz: file not found"):
        take_file(take_dir, 5)
    with pytest.raises(InputError, match=r"person_3: no such person; people in .*people: person_2, person_10$"):
        take_file(take_dir, 3)
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match=r"person_1: no such person; this take has no people/ folder"):
        take_file(tmp_path / "plain", 1)
    (tmp_path / "a_file").write_text("")
    with pytest.raises(InputError, match=r"a_file: not a folder; expected a 'posestudio reconstruct' output folder"):
        take_file(tmp_path / "a_file")


def _refused(capsys, *args: str | Path) -> str:
    assert _export(*args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "posestudio export: error:" in err
    return err


def test_missing_folder_and_file_are_named(tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.csv"
    assert "nowhere: no such folder" in _refused(capsys, tmp_path / "nowhere", "--csv", out)
    (tmp_path / "empty_dir").mkdir()
    err = _refused(capsys, tmp_path / "empty_dir", "--csv", out)
    assert f"{tmp_path / 'empty_dir' / 'points3d.npz'}: file not found" in err
    assert not out.exists()


@pytest.mark.parametrize("content, problem", [
    ("garbage", "not a readable .npz file"),
    ("flat", "'points3d' has shape (4, 17); expected (frames, joints, 3)"),
    ("no_names", "missing field 'joint_names'"),
    ("names", "'joint_names' has 3 names for 17 joints"),
    ("confidence", "'confidence' has shape (4, 5)"),
    ("bad_fps", "'fps' must be a positive number"),
])
def test_malformed_points3d_is_refused(tmp_path: Path, capsys, content: str, problem: str) -> None:
    folder = tmp_path / "take"
    folder.mkdir()
    path = folder / "points3d.npz"
    good = {"points3d": np.zeros((4, J, 3)), "confidence": np.ones((4, J)), "joint_names": np.array(NAMES),
            "fps": np.float64(30), "format": np.array("posestudio-points3d"), "format_version": np.int64(1)}
    if content == "garbage":
        path.write_bytes(b"this is not an npz file")
    else:
        changed = {"flat": {"points3d": np.zeros((4, J))}, "no_names": {},
                   "names": {"joint_names": np.array(NAMES[:3])}, "confidence": {"confidence": np.ones((4, 5))},
                   "bad_fps": {"fps": np.float64(0)}}[content]
        fields = {**good, **changed}
        if content == "no_names":
            del fields["joint_names"]
        np.savez(path, **fields)
    err = _refused(capsys, folder, "--trc", tmp_path / "x.trc", "--csv", tmp_path / "x.csv")
    assert str(path) in err and problem in err
    assert not (tmp_path / "x.trc").exists() and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("shape, problem", [((0, J, 3), "has no frames"), ((4, 0, 3), "has no joints"),
                                            ((4, J, 3), "every point in 'points3d' is NaN")])
def test_empty_take_is_refused(tmp_path: Path, capsys, shape: tuple[int, int, int], problem: str) -> None:
    folder = tmp_path / "take"
    n_joints = shape[1]
    write_points3d(folder / "points3d.npz", Points3D(np.full(shape, np.nan), np.zeros(shape[:2]),
                                                     NAMES[:n_joints], FPS))
    err = _refused(capsys, folder, "--json", tmp_path / "x.json")
    assert str(folder / "points3d.npz") in err and "the take is empty" in err and problem in err
    assert not (tmp_path / "x.json").exists()


def test_bad_options_are_refused_before_writing(take_dir: Path, tmp_path: Path, capsys) -> None:
    trc = tmp_path / "x.trc"
    assert "nothing to export" in _refused(capsys, take_dir)
    assert "--fps must be a positive number" in _refused(capsys, take_dir, "--trc", trc, "--fps", "0")
    assert f"{tmp_path}: is a folder; --bvh needs a file name" in _refused(capsys, take_dir, "--trc", trc,
                                                                           "--bvh", tmp_path)
    assert "named for both --trc and --csv" in _refused(capsys, take_dir, "--trc", trc, "--csv", trc)
    assert "--person must be a person number" in _refused(capsys, take_dir, "--trc", trc, "--person", "-1")
    assert _leftovers(tmp_path) == ["take"]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_folder_as_second_output_leaves_no_file(take_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    (out / "take.csv").mkdir(parents=True)
    err = _refused(capsys, take_dir, "--trc", out / "take.trc", "--csv", out / "take.csv")
    assert "take.csv: is a folder" in err
    assert _leftovers(out) == ["take.csv"]


def test_a_failure_while_writing_the_second_format_leaves_neither_file(take_dir: Path, tmp_path: Path,
                                                                       monkeypatch, capsys) -> None:
    def half_then_fail(path: Path, *args) -> tuple[int, int]:
        path.write_text("frame,time_s\n0,0.0\n")     # a partial file under the temporary name
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setitem(FORMATS, "csv", dataclasses.replace(FORMATS["csv"], write=half_then_fail))
    out = tmp_path / "out"
    out.mkdir()
    (out / "take.csv").write_text("an older export\n")
    assert _export(take_dir, "--trc", out / "take.trc", "--csv", out / "take.csv") == 2
    assert "no space left on device" in capsys.readouterr().err
    assert _leftovers(out) == ["take.csv"]                              # no TRC, no temporary file
    assert (out / "take.csv").read_text() == "an older export\n"        # the older file is untouched


def test_a_failed_rename_undoes_the_renames_before_it(take_dir: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "take.trc").write_text("an older TRC\n")
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == "take.json":
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic_module.os, "replace", replace)
    points, _ = read_take(take_dir)
    with pytest.raises(PermissionError):
        export_take(points, {"trc": out / "take.trc", "c3d": out / "take.c3d", "json": out / "take.json"})
    assert _leftovers(out) == ["take.trc"]
    assert (out / "take.trc").read_text() == "an older TRC\n"


def test_export_help_has_an_example(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower() and "--trc" in text and "--bvh" in text


# ---------------------------------------------------------------------------------------------
# BVH (runs once the skeleton solver, reconstruction/skeleton, exists)


def test_bvh_export_of_a_walk(tmp_path: Path, capsys) -> None:
    pytest.importorskip("posestudio.reconstruction.skeleton", reason="the skeleton solver is not written yet")
    walk = walking_body(60, fps=FPS, speed_m_s=1.0)
    folder = tmp_path / "walk"
    write_points3d(folder / "points3d.npz", Points3D(walk, np.full(walk.shape[:2], 0.9), NAMES, FPS))
    out = tmp_path / "walk.bvh"
    assert _export(folder, "--bvh", out, "--fps", "60") == 0
    assert str(out) in capsys.readouterr().out
    motion = read_bvh(out, length_unit_m=0.01, up_axis="y")     # centimetres, Y up by default
    for name in ("Hips", "Spine", "Spine1", "Neck", "Head", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase",
                 "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "RightUpLeg", "RightHand"):
        assert name in motion.names
    assert motion.names[motion.parents.index(-1)] == "Hips"
    assert motion.frame_time == pytest.approx(1 / 60.0)
    assert motion.n_frames == 2 * len(walk) - 1
    world = motion.world_positions()                              # metres, Z up
    hips, head = motion.names.index("Hips"), motion.names.index("Head")
    assert (world[:, head, 2] > world[:, hips, 2] + 0.3).all()    # upright
    np.testing.assert_allclose(world[::2, hips].mean(axis=0), walk[:, 0].mean(axis=0), atol=0.1)


def test_each_format_has_an_atomic_writer_of_its_own(tmp_path: Path) -> None:
    from posestudio.reconstruction.export import write_c3d, write_csv, write_json, write_trc

    take = _take()
    write_trc(tmp_path / "a.trc", take, units="m", fps=60.0)
    write_c3d(tmp_path / "a.c3d", take)
    write_csv(tmp_path / "a.csv", take, up="y")
    write_json(tmp_path / "a.json", take)
    assert _read_trc(tmp_path / "a.trc")["meta"]["NumFrames"] == str(2 * N_FRAMES - 1)
    assert _read_c3d(tmp_path / "a.c3d")["labels"] == NAMES
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 1 + N_FRAMES
    assert json.loads((tmp_path / "a.json").read_text())["joint_names"] == NAMES
    empty = Points3D(np.full((3, J, 3), np.nan), np.zeros((3, J)), NAMES, FPS)
    for write, name in ((write_trc, "b.trc"), (write_c3d, "b.c3d"), (write_csv, "b.csv"), (write_json, "b.json")):
        with pytest.raises(InputError, match="the take is empty"):
            write(tmp_path / name, empty)
    assert _leftovers(tmp_path) == ["a.c3d", "a.csv", "a.json", "a.trc"]
