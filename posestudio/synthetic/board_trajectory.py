"""Smooth hand-held board motion: board-to-world pose as a function of continuous time.

The board centre wanders inside the capture volume along a sum of random low-frequency
sinusoids per axis; the board's facing direction turns steadily about the vertical (so every
camera of a ring sees its printed face in turn, and neighbouring cameras at the same time),
with tilt and in-plane roll wobbles for angle diversity. Times are seconds, positions metres,
angles radians.

Pose convention: ``X_world = R(t) @ X_board + t(t)`` (board frame as in
:mod:`posestudio.calibration.board`: origin at the first square's outer corner, z into the board,
away from a viewer who sees the printed face).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from posestudio.calibration.board import BoardSpec
from posestudio.core.arrays import FloatArray
from posestudio.core.rotations import rodrigues_to_matrix


def _wave(amp: FloatArray, freq: FloatArray, phase: FloatArray, t: FloatArray) -> FloatArray:
    """``sum_k amp[..., k] * sin(2 pi freq[..., k] t + phase[..., k])`` for times ``(N,)``: ``(..., N)``."""
    arg = 2 * np.pi * freq[..., None] * t + phase[..., None]
    return (amp[..., None] * np.sin(arg)).sum(axis=-2)


@dataclass
class BoardTrajectory:
    """Board-to-world pose as a smooth function of time (callable).

    Attributes:
        center: ``(3,)`` centre of the volume, metres (world); the board centre moves in
            cylindrical coordinates about its vertical axis.
        board_center: ``(3,)`` board centre in the board frame, metres.
        pos_offset: ``(3,)`` mean ``(radius m, azimuth rad, height offset m)`` of the board centre.
        azimuth_rate: steady drift of the azimuth, rad/s.
        pos_amp, pos_freq, pos_phase: ``(3, K)`` sinusoid amplitudes (m, rad, m), frequencies
            (Hz) and phases (rad) added to ``(radius, azimuth, height)``.
        yaw0: facing azimuth at t = 0, rad (0: the printed face looks along world +x).
        yaw_rate: steady turning rate about world z, rad/s.
        yaw_amp, yaw_freq, yaw_phase: ``(K,)`` wobble of the yaw (rad, Hz, rad).
        pitch_bias: mean tilt, rad (negative: printed face tilted upwards).
        pitch_amp, pitch_freq, pitch_phase: ``(K,)`` tilt about the board's x axis.
        roll_amp, roll_freq, roll_phase: ``(K,)`` in-plane rotation about the board normal.
        time_scale: the position at time ``t`` is the pattern evaluated at ``t * time_scale``
            (set so that the take respects the linear speed limit).
        rot_time_scale: likewise for the orientation (angular speed limit).
        duration: length of the take the limits were checked on, seconds.
    """

    center: FloatArray
    board_center: FloatArray
    pos_offset: FloatArray
    azimuth_rate: float
    pos_amp: FloatArray
    pos_freq: FloatArray
    pos_phase: FloatArray
    yaw0: float
    yaw_rate: float
    yaw_amp: FloatArray
    yaw_freq: FloatArray
    yaw_phase: FloatArray
    pitch_bias: float
    pitch_amp: FloatArray
    pitch_freq: FloatArray
    pitch_phase: FloatArray
    roll_amp: FloatArray
    roll_freq: FloatArray
    roll_phase: FloatArray
    time_scale: float = 1.0
    rot_time_scale: float = 1.0
    duration: float = 0.0

    def __post_init__(self) -> None:
        for name in ("center", "board_center", "pos_offset", "pos_amp", "pos_freq", "pos_phase", "yaw_amp", "yaw_freq",
                     "yaw_phase", "pitch_amp", "pitch_freq", "pitch_phase", "roll_amp", "roll_freq", "roll_phase"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))

    def angles(self, times: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(yaw, pitch, roll)`` each ``(N,)`` radians at times ``(N,)`` seconds."""
        s = np.atleast_1d(np.asarray(times, float)) * self.rot_time_scale
        yaw = self.yaw0 + self.yaw_rate * s + _wave(self.yaw_amp, self.yaw_freq, self.yaw_phase, s)
        pitch = self.pitch_bias + _wave(self.pitch_amp, self.pitch_freq, self.pitch_phase, s)
        roll = _wave(self.roll_amp, self.roll_freq, self.roll_phase, s)
        return yaw, pitch, roll

    def centers(self, times: FloatArray) -> FloatArray:
        """Board centre in the world ``(N, 3)``, metres, at times ``(N,)`` seconds."""
        s = np.atleast_1d(np.asarray(times, float)) * self.time_scale
        rad, azi, height = self.pos_offset[:, None] + _wave(self.pos_amp, self.pos_freq, self.pos_phase, s)
        azi = azi + self.azimuth_rate * s
        return self.center + np.stack([rad * np.cos(azi), rad * np.sin(azi), height], axis=1)

    def poses(self, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Board-to-world poses at many times.

        Args:
            times: ``(N,)`` seconds.
        Returns:
            ``(R (N, 3, 3), t (N, 3))`` with ``X_world = R @ X_board + t``, metres.
        """
        times = np.atleast_1d(np.asarray(times, float))
        yaw, pitch, roll = self.angles(times)
        n = len(times)
        c, s = np.cos(yaw), np.sin(yaw)
        base = np.zeros((n, 3, 3))
        base[:, :, 0] = np.stack([-s, c, np.zeros(n)], axis=1)       # board x: viewer's right
        base[:, :, 1] = np.array([0.0, 0.0, -1.0])                    # board y: down
        base[:, :, 2] = np.stack([-c, -s, np.zeros(n)], axis=1)      # board z: away from viewer
        zeros = np.zeros(n)
        rot = (base @ rodrigues_to_matrix(np.stack([pitch, zeros, zeros], axis=1))
               @ rodrigues_to_matrix(np.stack([zeros, zeros, roll], axis=1)))
        trans = self.centers(times) - rot @ self.board_center
        return rot, trans

    def __call__(self, time: float) -> tuple[FloatArray, FloatArray]:
        """Board-to-world pose at one time (seconds): ``(R (3, 3), t (3,))``, metres."""
        rot, trans = self.poses(np.array([float(time)]))
        return rot[0], trans[0]

    def speeds(self, times: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Linear speed of the board centre (m/s) and angular speed (rad/s), each ``(N-1,)``,
        by finite differences between consecutive ``times`` ``(N,)`` seconds."""
        times = np.asarray(times, float)
        rot, _ = self.poses(times)
        ctr = self.centers(times)
        dt = np.diff(times)
        lin = np.linalg.norm(np.diff(ctr, axis=0), axis=1) / dt
        rel = rot[1:] @ np.swapaxes(rot[:-1], 1, 2)
        cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
        return lin, np.arccos(cos) / dt

    def to_dict(self) -> dict:
        """JSON-ready parameters (lists of floats); :meth:`from_dict` restores the trajectory."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "BoardTrajectory":
        return cls(**d)


def board_trajectory(board: BoardSpec, duration_s: float, seed: int = 0,
                     center: tuple[float, float, float] = (0.0, 0.0, 1.25), horizontal_radius: float = 1.5,
                     height_range: tuple[float, float] = (0.5, 2.0), max_speed: float = 1.0,
                     max_angular_speed_deg: float = 90.0, max_pitch_deg: float = 40.0,
                     max_roll_deg: float = 70.0, n_components: int = 3) -> BoardTrajectory:
    """A random, smooth, hand-held-like board motion for a take of ``duration_s`` seconds.

    The board centre stays within ``horizontal_radius`` metres of ``center``'s vertical axis and
    inside ``height_range`` metres (sums of sinusoid amplitudes are bounded). The facing
    direction turns about the vertical aiming for one full turn over the take (at most
    ``max_angular_speed_deg``/2 on its own), so a ring of cameras all see the printed face and
    neighbours see it together; tilt stays within ``max_pitch_deg`` around a 10 deg upward lean
    and in-plane roll within ``max_roll_deg``. Finally time is slowed down, if needed, so that the
    centre moves at most ``max_speed`` m/s and the board turns at most ``max_angular_speed_deg``
    deg/s anywhere in the take.

    Args:
        board: the board (its size sets the rotation centre).
        duration_s: take length, seconds (> 0).
        seed: random seed (same seed, same motion).
        center: ``(3,)`` centre of the motion, metres.
        horizontal_radius: bound on the centre's horizontal distance from ``center``, metres.
        height_range: ``(min, max)`` height of the board centre, metres.
        max_speed: linear speed limit, m/s.
        max_angular_speed_deg: angular speed limit, deg/s.
        max_pitch_deg, max_roll_deg: tilt and roll amplitude bounds, degrees.
        n_components: sinusoids per coordinate.
    Returns:
        A callable :class:`BoardTrajectory` ``t -> (R (3, 3), t (3,))``.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0 seconds, got {duration_s}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7BA1]))
    k = int(n_components)
    harmonics = np.array([1.0, 1.9, 3.3, 5.1, 7.3])[:k] if k <= 5 else 1.0 + 1.3 * np.arange(k)

    def freqs(rows: int, base: float) -> FloatArray:
        return base * harmonics * rng.uniform(0.8, 1.25, (rows, k))

    def amps(rows: int, total: float) -> FloatArray:
        w = rng.uniform(0.5, 1.0, (rows, k)) / np.arange(1, k + 1)
        return w / w.sum(axis=1, keepdims=True) * total

    ctr = np.array([center[0], center[1], 0.5 * (height_range[0] + height_range[1])])
    half_h = 0.5 * (height_range[1] - height_range[0])
    # Position: slow enough to stay hand-held without much time scaling (about one period of
    # the fundamental per 15 s, never less than a third of a period per take).
    pos_base = max(0.066, 0.33 / duration_s)
    rot_base = max(0.08, 0.5 / duration_s)
    pos_amp = np.concatenate([amps(1, 1.0), amps(1, np.radians(40.0)), amps(1, 1.0)])
    azimuth_rate = 2 * np.pi / 20.0 * rng.choice([-1.0, 1.0])
    max_w = np.radians(max_angular_speed_deg)
    yaw_rate = min(2 * np.pi / duration_s, 0.6 * max_w) * rng.choice([-1.0, 1.0])
    traj = BoardTrajectory(
        center=ctr, board_center=np.array([board.size_m[0] / 2, board.size_m[1] / 2, 0.0]),
        pos_offset=np.array([0.0, rng.uniform(0, 2 * np.pi), 0.0]), azimuth_rate=float(azimuth_rate),
        pos_amp=pos_amp, pos_freq=freqs(3, pos_base), pos_phase=rng.uniform(0, 2 * np.pi, (3, k)),
        yaw0=float(rng.uniform(0, 2 * np.pi)), yaw_rate=float(yaw_rate),
        yaw_amp=amps(1, np.radians(30.0))[0], yaw_freq=freqs(1, rot_base)[0], yaw_phase=rng.uniform(0, 2 * np.pi, k),
        pitch_bias=float(np.radians(-10.0)), pitch_amp=amps(1, np.radians(max_pitch_deg))[0],
        pitch_freq=freqs(1, rot_base)[0], pitch_phase=rng.uniform(0, 2 * np.pi, k),
        roll_amp=amps(1, np.radians(max_roll_deg))[0], roll_freq=freqs(1, rot_base)[0],
        roll_phase=rng.uniform(0, 2 * np.pi, k), duration=float(duration_s))
    times = np.linspace(0.0, duration_s, max(int(duration_s * 400), 400))
    # Make the take span the volume (radius 0.1 m .. horizontal_radius, the whole height range:
    # near views, far views and boards partly outside the images), then slow time where the
    # pattern is too fast for a hand-held board. Speeds scale about linearly with the time
    # scales, but the window of the pattern a take sees moves with them: iterate.
    lo = np.array([0.1, 0.0, -half_h + 0.05])
    hi = np.array([horizontal_radius, 0.0, half_h - 0.05])
    for _ in range(6):
        s = times * traj.time_scale
        wave = _wave(traj.pos_amp, traj.pos_freq, traj.pos_phase, s)
        for axis in (0, 2):  # affine map of the realised range onto [lo, hi]
            w_min, w_max = wave[axis].min(), wave[axis].max()
            gain = (hi[axis] - lo[axis]) / max(w_max - w_min, 1e-9)
            traj.pos_amp[axis] *= gain
            traj.pos_offset[axis] = lo[axis] - gain * w_min
        lin, ang = traj.speeds(times)
        traj.time_scale = float(min(1.0, traj.time_scale * max_speed / max(lin.max(), 1e-9)) * 0.995)
        traj.rot_time_scale = float(min(1.0, traj.rot_time_scale * max_w / max(ang.max(), 1e-9)) * 0.995)
    for _ in range(20):  # final guarantee of the limits
        lin, ang = traj.speeds(times)
        if lin.max() <= max_speed and ang.max() <= max_w:
            break
        traj.time_scale *= min(1.0, max_speed / lin.max()) * 0.99
        traj.rot_time_scale *= min(1.0, max_w / ang.max()) * 0.99
    return traj
