"""The viewer's window: a take played back, or a live skeleton stream, in Open3D's legacy visualizer.

A thin layer over :mod:`posestudio.viewer.scene`: the same skeletons (bones in one hue per person,
joints coloured by confidence), camera frusta, floor grid and world axes as the offscreen
renders, in ``open3d.visualization.VisualizerWithKeyCallback`` (mouse: rotate, pan, zoom).

Keys: space plays or pauses; right arrow or ``.`` steps one frame forward, left arrow or ``,`` one
back (stepping pauses); Home goes to the first frame; Q or Esc closes. The frame counter is
printed on one line of the terminal.

Live (:func:`play_live`): a :class:`~posestudio.viewer.stream_client.SkeletonSubscriber` is polled
each time the window draws and the newest skeleton frame replaces the shown one.

Without a display (no ``DISPLAY``/``WAYLAND_DISPLAY`` on Linux) nothing is opened:
:class:`NoDisplay` says to render offscreen instead.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from posestudio.core.camera import Camera
from posestudio.core.errors import InputError, PoseStudioError
from posestudio.core.rig import CameraRig
from posestudio.viewer.offscreen import open3d_module
from posestudio.viewer.scene import (
    SceneStyle,
    Take,
    default_view_camera,
    floor_extent,
    joint_markers,
    layout_order,
    skeleton_lines,
    static_geometry,
    tile_spheres,
    unit_sphere,
)

if TYPE_CHECKING:
    from posestudio.core.skeleton_stream import SkeletonFrame

NO_DISPLAY = "no display: use --offscreen out.png|out.mp4"
#: GLFW key codes the window answers.
KEY_SPACE, KEY_RIGHT, KEY_LEFT, KEY_PERIOD, KEY_COMMA, KEY_HOME = 32, 262, 263, 46, 44, 268


class NoDisplay(PoseStudioError):
    """No window can be opened here (no display)."""

    def __init__(self, message: str = NO_DISPLAY) -> None:
        super().__init__(message)


def has_display() -> bool:
    """Whether a window can be shown: always on macOS and Windows, on Linux only with X11 or Wayland.

    (Open3D's legacy visualizer silently falls back to an invisible EGL context without a display,
    so its ``create_window`` answer alone cannot tell.)
    """
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass
class Playback:
    """The timeline: which frame shows, whether it plays; advanced by the clock, at the take's rate.

    Attributes:
        n_frames: frames in the take; fps: frames per second; frame: the frame shown (0-based);
        playing: whether :meth:`tick` advances (it loops at the end).
    """

    n_frames: int
    fps: float
    frame: int = 0
    playing: bool = True
    _due: float | None = field(default=None, repr=False)

    def toggle(self) -> None:
        """Play or pause."""
        self.playing = not self.playing
        self._due = None

    def step(self, frames: int) -> None:
        """Pause and move ``frames`` (negative: back), clamped to the take."""
        self.playing = False
        self.frame = int(np.clip(self.frame + frames, 0, self.n_frames - 1))

    def seek(self, frame: int) -> None:
        """Show ``frame`` (clamped), keeping play/pause."""
        self.frame = int(np.clip(frame, 0, self.n_frames - 1))
        self._due = None

    def tick(self, now_s: float) -> bool:
        """Advance by the frames due at clock time ``now_s`` (seconds); True when the frame changed."""
        if not self.playing or self.n_frames < 2:
            return False
        if self._due is None:
            self._due = now_s + 1.0 / self.fps
            return False
        if now_s < self._due:
            return False
        late = int((now_s - self._due) * self.fps) + 1
        self._due += late / self.fps
        self.frame = (self.frame + late) % self.n_frames
        return True

    def status(self) -> str:
        """``frame 12/300 (playing)``: 1-based for people."""
        return f"frame {self.frame + 1}/{self.n_frames} ({'playing' if self.playing else 'paused'})"


class SkeletonWindow:
    """An Open3D window showing the scene and one instant, whose skeletons are replaced in place.

    Raises:
        NoDisplay: no display, or the window could not be opened.
    """

    def __init__(self, title: str, camera: Camera, rig: CameraRig | None, extent: tuple[float, float, float, float],
                 style: SceneStyle) -> None:
        if not has_display():
            raise NoDisplay()
        o3d = open3d_module()
        self._o3d, self.style = o3d, style
        self.vis = o3d.visualization.VisualizerWithKeyCallback()
        w, h = camera.image_size
        if not self.vis.create_window(window_name=title, width=w, height=h):
            raise NoDisplay()
        opt = self.vis.get_render_option()
        opt.background_color = np.asarray(style.background, float)
        opt.light_on = False
        opt.mesh_show_back_face = True
        opt.line_width = style.line_width_px(h)
        for d in static_geometry(extent, rig, style):
            self.vis.add_geometry(d.geometry)
        self._camera = camera
        self._set_view()
        self.bones = o3d.geometry.LineSet()
        self.joints = o3d.geometry.TriangleMesh()
        self._added: set[str] = set()

    def show(self, points: np.ndarray, confidence: np.ndarray, bones: np.ndarray, hues: np.ndarray) -> None:
        """Replace the skeletons: ``points (P, J, 3)`` metres, ``confidence (P, J)``, ``bones (B, 2)``,
        ``hues (P, 3)``."""
        o3d = self._o3d
        lines = skeleton_lines(points, bones, hues)
        self.bones.points = o3d.utility.Vector3dVector(lines.points)
        self.bones.lines = o3d.utility.Vector2iVector(lines.lines.astype(np.int32).reshape(-1, 2))
        self.bones.colors = o3d.utility.Vector3dVector(lines.colours.reshape(-1, 3))
        markers = joint_markers(points, confidence)
        v, t, c = tile_spheres(markers.centres, markers.colours, self.style.joint_radius_m, unit_sphere(6))
        self.joints.vertices = o3d.utility.Vector3dVector(v)
        self.joints.triangles = o3d.utility.Vector3iVector(t.astype(np.int32))
        self.joints.vertex_colors = o3d.utility.Vector3dVector(c)
        for name, geometry in (("bones", self.bones), ("joints", self.joints)):
            if name in self._added:
                self.vis.update_geometry(geometry)
            elif not geometry.is_empty():     # Open3D refuses to add an empty geometry
                self.vis.add_geometry(geometry, reset_bounding_box=False)   # keeps the view
                self._added.add(name)

    def _set_view(self) -> None:
        """The starting view: the camera's pose and focal length (the window centres its principal point)."""
        cam, o3d = self._camera, self._o3d
        w, h = cam.image_size
        params = o3d.camera.PinholeCameraParameters()
        params.intrinsic = o3d.camera.PinholeCameraIntrinsic(w, h, cam.matrix[0, 0], cam.matrix[1, 1],
                                                             w / 2 - 0.5, h / 2 - 0.5)
        e = np.eye(4)
        e[:3, :3], e[:3, 3] = cam.rotation, cam.translation
        params.extrinsic = e
        self.vis.get_view_control().convert_from_pinhole_camera_parameters(params, allow_arbitrary=True)

    def run(self) -> None:
        """Hand control to the window until it is closed."""
        try:
            self.vis.run()
        finally:
            self.vis.destroy_window()


def play_take(take: Take, rig: CameraRig | None = None, camera: Camera | None = None,
              style: SceneStyle | None = None, start_frame: int | None = None, title: str = "PoseStudio") -> None:
    """Play a take in a window until it is closed (keys in the module docstring).

    Args:
        take: the skeletons; rig: cameras drawn as frusta; camera: the starting view (default:
            the whole take and the rig from a 3/4 angle, 1280 x 720); start_frame: 0-based.
    Raises:
        NoDisplay: no display here.
    """
    style = style or SceneStyle()
    camera = camera or default_view_camera(take.points, rig)
    window = SkeletonWindow(title, camera, rig, floor_extent(take.points, style.grid_spacing_m, style.grid_margin_m),
                            style)
    clock = Playback(take.n_frames, take.fps, frame=start_frame or 0, playing=start_frame is None)
    bones, hues = take.layout.bone_indices, take.hues

    def draw() -> None:
        window.show(take.points[clock.frame], take.confidence[clock.frame], bones, hues)
        print(f"\r{clock.status()}   ", end="", flush=True)

    def on_key(action: Any) -> Any:
        def callback(_vis: Any) -> bool:
            action()
            draw()
            return True
        return callback

    def on_tick(_vis: Any) -> bool:
        if clock.tick(time.perf_counter()):
            draw()
            return True
        return False

    for key, action in ((KEY_SPACE, clock.toggle), (KEY_RIGHT, lambda: clock.step(1)),
                        (KEY_PERIOD, lambda: clock.step(1)), (KEY_LEFT, lambda: clock.step(-1)),
                        (KEY_COMMA, lambda: clock.step(-1)), (KEY_HOME, lambda: clock.seek(0))):
        window.vis.register_key_callback(key, on_key(action))
    window.vis.register_animation_callback(on_tick)
    draw()
    window.run()
    print()


# ---------------------------------------------------------------------------------------------
# live

def take_from_frame(frame: SkeletonFrame, fps: float = 30.0) -> Take:
    """A one-frame :class:`Take` of a stream's skeleton frame (hues by person id).

    Raises:
        InputError: the frame's joint names form no known layout.
    """
    try:
        layout, order = layout_order(tuple(frame.joint_names))
    except ValueError as exc:
        raise InputError(f"skeleton stream: {exc}") from None
    pts = np.asarray(frame.points, np.float64)[:, order][None]
    conf = np.asarray(frame.confidence, np.float64)[:, order][None]
    ids = np.asarray(frame.person_ids, np.int64)
    return Take(pts, conf, layout, fps, tuple(f"person {i}" for i in ids), ids)


def newest_frame(subscriber: Any, limit: int = 1000) -> SkeletonFrame | None:
    """Drain what the subscriber holds without waiting; the newest frame, or None."""
    if hasattr(subscriber, "latest"):
        return subscriber.latest(0.0)
    newest = None
    for _ in range(limit):
        frame = subscriber.receive(0.0)
        if frame is None:
            break
        newest = frame
    return newest


def wait_for_frame(endpoint: str, timeout_s: float) -> SkeletonFrame:
    """Subscribe to ``endpoint`` and wait for the first skeleton frame.

    Raises:
        InputError: none arrived within ``timeout_s`` seconds (the message counts malformed messages).
    """
    # Imported here: the stream client needs ZeroMQ, only the live viewer does.
    from posestudio.viewer.stream_client import SkeletonSubscriber

    deadline = time.monotonic() + timeout_s
    with SkeletonSubscriber(endpoint) as sub:
        while (left := deadline - time.monotonic()) > 0:
            frame = sub.receive(left)
            if frame is not None:
                return frame
        bad = getattr(sub, "malformed", 0)
    raise InputError(f"{endpoint}: no skeleton frame arrived within {timeout_s:g} s"
                     + (f" ({bad} malformed messages ignored)" if bad else ""))


def play_live(endpoint: str, rig: CameraRig | None = None, camera: Camera | None = None,
              style: SceneStyle | None = None) -> None:
    """Show a skeleton stream live until the window is closed.

    Args:
        endpoint: ``tcp://HOST:PORT`` of the publisher.
        rig: cameras drawn as frusta (and framed by the default view).
        camera: the starting view (default: the rig and a 2 m volume at the origin, 3/4 angle).
    Raises:
        NoDisplay: no display here.
    """
    # Imported here: the stream client needs ZeroMQ, only the live viewer does.
    from posestudio.viewer.stream_client import SkeletonSubscriber

    style = style or SceneStyle()
    volume = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 2.0]])
    camera = camera or default_view_camera(volume, rig)
    extent = floor_extent(np.vstack([volume] + ([rig.centers] if rig is not None else [])), style.grid_spacing_m,
                          0.5)
    window = SkeletonWindow(f"PoseStudio live: {endpoint}", camera, rig, extent, style)
    with SkeletonSubscriber(endpoint) as sub:
        def on_tick(_vis: Any) -> bool:
            frame = newest_frame(sub)
            if frame is None:
                return False
            take = take_from_frame(frame)
            window.show(take.points[0], take.confidence[0], take.layout.bone_indices, take.hues)
            print(f"\rlive: frame {frame.sequence} at {frame.timestamp_s:.3f} s, {take.n_people} people, "
                  f"{getattr(sub, 'malformed', 0)} malformed   ", end="", flush=True)
            return True

        window.vis.register_animation_callback(on_tick)
        window.run()
    print()
