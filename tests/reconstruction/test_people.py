"""Several people in view: per-view lists of people grouped across views and linked into tracks."""

from __future__ import annotations

import time

import numpy as np
import pytest

from posestudio.core.errors import InputError
from posestudio.reconstruction.people import (
    PeopleOptions,
    PeopleTracks,
    choose_subject,
    epipolar_costs,
    pad_candidates,
    track_people,
)
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

FRAMES = 240
ONLY_TWO_VIEWS = slice(150, 230)   # person B is seen by views 0 and 1 only
BLIND_VIEW, BLIND_FRAME = 1, 60    # view 1 sees nobody in this frame
CROSSING = slice(105, 136)         # A and B pass each other, pelvises 0.5 m apart at the closest


def _candidates(detections: list[np.ndarray], keep, seed: int = 0) -> tuple[list, list]:
    """Per frame and view, the visible people in a shuffled order, and who each row is."""
    rng = np.random.default_rng(seed)
    n_views, n_frames = detections[0].shape[:2]
    candidates, who = [], []
    for f in range(n_frames):
        rows, ids = [], []
        for v in range(n_views):
            people = [i for i, d in enumerate(detections) if np.isfinite(d[v, f]).any() and keep(i, v, f)]
            people = [people[k] for k in rng.permutation(len(people))]
            rows.append(np.array([detections[i][v, f] for i in people]).reshape(-1, 17, 3))
            ids.append(people)
        candidates.append(rows)
        who.append(ids)
    return candidates, who


def _owners(tracks: PeopleTracks, who: list) -> np.ndarray:
    """``(T, C, F)`` the true person behind each track's detection, -1 where none."""
    out = np.full(tracks.detections.shape, -1)
    for t, v, f in zip(*np.nonzero(tracks.detections >= 0)):
        out[t, v, f] = who[f][v][tracks.detections[t, v, f]]
    return out


def _median_error(points: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(F,)`` median joint distance, metres (NaN where no joint)."""
    err = np.linalg.norm(points - truth, axis=-1)
    return np.array([np.median(e[np.isfinite(e)]) if np.isfinite(e).any() else np.nan for e in err])


@pytest.fixture(scope="module")
def two_people():
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    a = walking_body(FRAMES, start=(-1.8, -0.25), speed_m_s=0.45)
    b = walking_body(FRAMES, start=(1.8, 0.25), speed_m_s=0.45, heading_deg=180, stride_hz=1.1)
    detections = [simulate_detections(rig, body, DetectorErrors(seed=s)).keypoints for s, body in ((1, a), (2, b))]

    def keep(person: int, view: int, frame: int) -> bool:
        if view == BLIND_VIEW and frame == BLIND_FRAME:
            return False
        return not (person == 1 and view in (2, 3) and ONLY_TWO_VIEWS.start <= frame < ONLY_TWO_VIEWS.stop)

    candidates, who = _candidates(detections, keep)
    tracks = track_people(candidates, rig, 30.0)
    return rig, np.stack([a, b]), detections, candidates, who, tracks


def test_each_track_is_one_person_within_centimetres(two_people) -> None:
    _, truth, _, _, who, tracks = two_people
    assert tracks.n_tracks == 2
    owners = _owners(tracks, who)
    person = [int(np.bincount(o[o >= 0]).argmax()) for o in owners]
    assert sorted(person) == [0, 1]
    for t, p in enumerate(person):
        assert set(np.unique(owners[t])) <= {-1, p}, "a track took another person's detection"
        err = _median_error(tracks.points[t], truth[p])
        seen = tracks.views_seen[t] >= 2
        assert seen.mean() > 0.98
        assert (err[seen] < 0.05).mean() > 0.98, np.nanpercentile(err, [50, 98])
    total = sum(len(ids) for frame in who for ids in frame)
    assert (tracks.detections >= 0).sum() >= 0.99 * total             # nearly every detection placed


def test_people_crossing_half_a_metre_apart_are_kept_apart(two_people) -> None:
    _, truth, _, _, who, tracks = two_people
    gap = np.linalg.norm(truth[0, CROSSING, 0, :2] - truth[1, CROSSING, 0, :2], axis=-1)
    assert gap.min() < 0.55                                            # they do come close
    owners = _owners(tracks, who)[:, :, CROSSING]
    for t in range(2):
        mine = owners[t][owners[t] >= 0]
        assert mine.size > 0.95 * 4 * gap.size and np.unique(mine).size == 1
        person = int(mine[0])
        err = _median_error(tracks.points[t, CROSSING], truth[person, CROSSING])
        other = _median_error(tracks.points[t, CROSSING], truth[1 - person, CROSSING])
        assert np.nanmax(err) < 0.05 and np.nanmin(other) > 0.3


def test_the_subject_is_the_person_more_cameras_see(two_people) -> None:
    _, truth, detections, _, who, tracks = two_people
    owners = _owners(tracks, who)
    track_of = {int(np.bincount(o[o >= 0]).argmax()): t for t, o in enumerate(owners)}
    assert tracks.subject == track_of[0]                              # B is seen by two cameras for a while
    subject_2d = tracks.for_subject()
    assert subject_2d.shape == (4, FRAMES, 17, 3)
    mine = owners[tracks.subject] == 0
    np.testing.assert_array_equal(subject_2d[mine], detections[0][mine])   # the detector's rows, untouched
    assert np.isnan(subject_2d[~mine]).all()
    assert choose_subject(tracks, track_of[1]) == track_of[1]
    assert choose_subject(tracks, (1.5, 0.25)) == track_of[1]          # nearest to a point on the floor
    assert choose_subject(tracks, tuple(truth[0, 0, 0])) == track_of[0]


def test_a_view_that_sees_one_of_the_two(two_people) -> None:
    _, _, _, _, who, tracks = two_people
    owners = _owners(tracks, who)
    b = int(np.flatnonzero([(o == 1).any() for o in owners])[0])
    a = 1 - b
    assert (tracks.detections[b][2:, ONLY_TWO_VIEWS] < 0).all()
    assert (tracks.views_seen[b, ONLY_TWO_VIEWS] == 2).mean() > 0.95
    assert (tracks.detections[a][2:, ONLY_TWO_VIEWS] >= 0).mean() > 0.95   # the one person there goes to A
    assert np.isfinite(tracks.points[b, ONLY_TWO_VIEWS]).all(-1).any(-1).mean() > 0.98


def test_a_view_that_sees_nobody(two_people) -> None:
    _, _, _, candidates, _, tracks = two_people
    assert candidates[BLIND_FRAME][BLIND_VIEW].shape == (0, 17, 3)
    assert (tracks.detections[:, BLIND_VIEW, BLIND_FRAME] == -1).all()
    assert np.isnan(tracks.keypoints[:, BLIND_VIEW, BLIND_FRAME]).all()
    assert (tracks.views_seen[:, BLIND_FRAME] == 3).all()


def test_one_person_gives_back_exactly_its_input() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    body = walking_body(FRAMES, start=(-1.8, -0.25), speed_m_s=0.45)
    kp = simulate_detections(rig, body, DetectorErrors(seed=5)).keypoints
    candidates, _ = _candidates([kp], lambda *_: True)
    tracks = track_people(candidates, rig, 30.0)
    assert tracks.n_tracks == 1 and tracks.subject == 0
    np.testing.assert_array_equal(tracks.for_subject(), kp)
    np.testing.assert_array_equal(tracks.track(0), kp)
    assert (_median_error(tracks.points[0], body) < 0.03).mean() > 0.98


def test_a_short_absence_keeps_the_track() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    a = walking_body(120, start=(-1.0, -1.0), speed_m_s=0.4, heading_deg=45)
    b = walking_body(120, start=(1.0, 0.5), speed_m_s=0.3, heading_deg=200)
    detections = [simulate_detections(rig, body, DetectorErrors(seed=s)).keypoints for s, body in ((3, a), (4, b))]
    candidates, who = _candidates(detections, lambda i, v, f: not (i == 1 and 50 <= f < 58), seed=1)
    tracks = track_people(candidates, rig, 30.0, PeopleOptions(max_gap_frames=10))
    assert tracks.n_tracks == 2
    owners = _owners(tracks, who)
    assert all(np.unique(o[o >= 0]).size == 1 for o in owners)
    b_track = int(np.flatnonzero([(o == 1).any() for o in owners])[0])
    assert (tracks.views_seen[b_track, 50:58] == 0).all() and (tracks.views_seen[b_track, 58:62] > 0).all()


def test_epipolar_costs_of_exact_projections() -> None:
    rig = make_studio_rig(3, (1920, 1080), seed=2)
    bodies = np.stack([walking_body(1, start=(-0.8, 0.0))[0], walking_body(1, start=(0.9, 0.4))[0]])
    pix = rig.project(bodies)                                                          # (V, P, J, 2)
    xy = rig.undistort(pix.reshape(3, -1, 2)).reshape(1, 3, 2, 17, 2)                   # (F, V, P, J, 2)
    homog = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
    cost = epipolar_costs(homog, np.ones(xy.shape[:-1]), rig, 1e3, 4)[0]               # (V, P, V, P)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert np.diag(cost[i, :, j, :]).max() < 1e-6                                 # the same person: 0 px
        assert cost[i, 0, j, 1] > 20 and cost[i, 1, j, 0] > 20
        np.testing.assert_allclose(cost[i, :, j, :], cost[j, :, i, :].T)
    assert np.isinf(cost[0, :, 0, :]).all()


def test_association_is_fast() -> None:
    frames = 1000
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    a = walking_body(frames, start=(-1.0, -1.0), speed_m_s=0.05, heading_deg=30)
    b = walking_body(frames, start=(1.0, 1.0), speed_m_s=0.05, heading_deg=200)
    detections = [simulate_detections(rig, body, DetectorErrors(seed=s)).keypoints for s, body in ((1, a), (2, b))]
    candidates, _ = _candidates(detections, lambda *_: True)
    start = time.perf_counter()
    tracks = track_people(candidates, rig, 30.0)
    assert time.perf_counter() - start < 10.0                         # about 1 s on two shared cores
    assert tracks.n_tracks == 2 and tracks.views_seen.mean() > 3.9


def test_takes_with_nobody() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    for candidates in ([], [[np.zeros((0, 17, 3))] * 4] * 6):
        tracks = track_people(candidates, rig, 30.0)
        assert tracks.n_tracks == 0 and tracks.subject == -1
        assert tracks.keypoints.shape == (0, 4, len(candidates), 17, 3)
        with pytest.raises(InputError, match="no person"):
            tracks.for_subject()
        assert choose_subject(tracks) == -1


def test_bad_input_and_options_name_the_field() -> None:
    rig = make_studio_rig(2, (640, 480), seed=1)
    with pytest.raises(InputError, match=r"candidates\[0\]\[1\]"):
        pad_candidates([[np.zeros((1, 17, 3)), np.zeros((1, 16, 3))]], 2)
    with pytest.raises(InputError, match=r"candidates\[0\] has 1 views"):
        track_people([[np.zeros((1, 17, 3))]], rig, 30.0)
    with pytest.raises(InputError, match="fps"):
        track_people([], rig, 0.0)
    for field, value in (("epipolar_gate_px", 0.0), ("reprojection_gate_px", -1.0), ("link_gate_m_s", np.nan),
                         ("max_gap_frames", -1), ("min_track_frames", 1.5), ("min_confidence", 2.0),
                         ("subject", "tallest"), ("subject", (1.0,)), ("subject", -2)):
        with pytest.raises(InputError, match=field):
            PeopleOptions(**{field: value}).check()
    PeopleOptions(subject=(0.0, 1.0, 0.9)).check()
    PeopleOptions(subject=3).check()
    empty = track_people([], rig, 30.0)
    with pytest.raises(InputError, match="track 0 does not exist"):
        choose_subject(empty, 0)
