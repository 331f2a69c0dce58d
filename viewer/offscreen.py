"""Rendering the viewer's scene without a display: one instant to a PNG, a whole take to an MP4.

Two Open3D renderers, tried in this order (``renderer="auto"``):

* ``"legacy"``: ``open3d.visualization.Visualizer`` with an invisible window, which falls back to
  an EGL context (Mesa's llvmpipe on the CPU) without a display. Lights are off, so colours are
  exact. Its principal point is always the canvas centre, so it renders a canvas centred on the
  camera's principal point and crops it (within 0.25 px); one line width serves every line. It
  renders a 1280 x 720 frame in about 45 ms here and never hung in our tests.
* ``"filament"``: ``open3d.visualization.rendering.OffscreenRenderer``: the full intrinsic matrix,
  wide lines, exact unlit colours with post-processing off. Without a GPU it runs on Mesa's CPU
  Vulkan driver (Debian's ``mesa-vulkan-drivers``), about 5x slower, and there (Mesa 22.3)
  a frame holding meshes can hang forever inside the driver, so this backend draws joints as
  points. Where Vulkan is missing or broken Filament aborts the process that tries it, so it is
  first tried in a short child process (:func:`filament_works`). It is the fallback: once Filament
  ran in a process, the legacy window no longer opens there (Open3D 0.20).

Cameras are pinhole (:class:`~posestudio.core.camera.Camera`, distortion ignored) in OpenCV's
convention, pixel centres at integer coordinates: a world point lands where ``camera.project``
puts it. ``POSESTUDIO_RENDERER=legacy|filament`` picks the renderer for ``"auto"``. Images are
``(H, W, 3)`` uint8 RGB. Files are written atomically (temporary file in the same folder, renamed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import cv2
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.errors import PoseStudioError
from posestudio.core.rig import CameraRig
from posestudio.viewer.scene import (
    Drawable,
    SceneStyle,
    Take,
    default_view_camera,
    floor_extent,
    instant_geometry,
    static_geometry,
)

RENDERERS = ("auto", "legacy", "filament")
INSTALL_HINT = ("on Debian/Ubuntu install libusb-1.0-0, libegl1 and mesa-vulkan-drivers "
                "(bash .ci/system-deps.sh does it)")


class RenderUnavailable(PoseStudioError):
    """No offscreen renderer works on this machine; the message says what each one answered."""


def open3d_module() -> Any:
    """``import open3d`` with its log limited to errors; :class:`RenderUnavailable` when it cannot load."""
    try:
        import open3d as o3d  # imported here: a second to import, and it needs the system's libusb
    except (ImportError, OSError) as exc:
        raise RenderUnavailable(f"cannot import open3d ({exc}); {INSTALL_HINT}") from None
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


@contextmanager
def native_output_captured() -> Iterator[Any]:
    """Send what native code writes to stdout/stderr (file descriptors 1 and 2) to a temporary file.

    Filament prints its engine set-up there; the file (binary, read it after the block) keeps it
    for an error message.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


_PROBE = ("import numpy as np, open3d as o3d\n"
          "o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)\n"
          "r = o3d.visualization.rendering.OffscreenRenderer(16, 16)\n"
          "print('posestudio-probe-ok', np.asarray(r.render_to_image()).shape)\n")


@lru_cache(maxsize=1)
def filament_works(timeout_s: float = 120.0) -> tuple[bool, str]:
    """Whether Open3D's Filament renderer starts here, tried in a child process (it aborts the process
    that tries it where Vulkan is missing or broken); ``(works, why not)``. Cached per process."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"a test render did not finish in {timeout_s:g} s"
    if "posestudio-probe-ok" in done.stdout:
        return True, ""
    text = (done.stderr + done.stdout).strip().splitlines()
    reason = next((line.strip() for line in reversed(text)
                   if any(w in line for w in ("Failed", "rror", "nable", "reason"))), text[-1] if text else "")
    return False, f"a test render failed (exit status {done.returncode}: {reason[:200]})"


def srgb_encode(rgb: FloatArray) -> FloatArray:
    """Linear [0, 1] to sRGB-encoded values (Filament decodes its background colour as sRGB)."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def extrinsic_matrix(camera: Camera) -> FloatArray:
    """``(4, 4)`` world-to-camera transform ``[R t; 0 1]`` (metres, OpenCV axes)."""
    e = np.eye(4)
    e[:3, :3], e[:3, 3] = camera.rotation, camera.translation
    return e


class Backend(Protocol):
    """An offscreen renderer: groups of drawables shown, images rendered from pinhole cameras."""

    name: str
    meshes_ok: bool      # False: joints must be drawn as points

    def show(self, drawables: list[Drawable], group: str) -> None:
        """Replace what ``group`` (e.g. ``"static"``, ``"instant"``) showed by ``drawables``."""

    def render(self, camera: Camera) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB through ``camera`` (``image_size`` W x H, distortion ignored)."""

    def close(self) -> None:
        """Release the renderer."""


class FilamentBackend:
    """Open3D's ``OffscreenRenderer`` (Filament), post-processing off so colours are exact.

    Joints are drawn as points: on Mesa 22's CPU Vulkan driver (lavapipe) a frame with the joint
    spheres' meshes can hang forever inside the driver.
    """

    name = "filament"
    meshes_ok = False

    def __init__(self, camera: Camera, background: FloatArray) -> None:
        o3d = open3d_module()
        self._o3d = o3d
        self.size = tuple(camera.image_size)
        try:
            with native_output_captured() as log:
                self._renderer = o3d.visualization.rendering.OffscreenRenderer(*self.size)
        except Exception as exc:  # noqa: BLE001 - Open3D raises plain RuntimeErrors here
            log.seek(0)
            raise RenderUnavailable(f"Open3D's OffscreenRenderer: {exc} {log.read().decode(errors='replace')[-300:]}"
                                    ) from None
        self._renderer.scene.view.set_post_processing(False)
        self._renderer.scene.set_background([*srgb_encode(background), 1.0])
        self._groups: dict[str, list[str]] = {}

    def show(self, drawables: list[Drawable], group: str) -> None:
        scene = self._renderer.scene
        for name in self._groups.pop(group, []):
            scene.remove_geometry(name)
        names = []
        for d in drawables:
            material = self._o3d.visualization.rendering.MaterialRecord()
            if d.line_width_px > 0:
                material.shader, material.line_width = "unlitLine", float(d.line_width_px)
            else:
                material.shader, material.point_size = "defaultUnlit", float(d.point_size_px or 1.0)
            scene.add_geometry(f"{group}/{d.name}", d.geometry, material)
            names.append(f"{group}/{d.name}")
        self._groups[group] = names

    def render(self, camera: Camera) -> np.ndarray:
        if tuple(camera.image_size) != self.size:
            raise ValueError(f"camera is {camera.image_size}, renderer {self.size}")
        k = camera.matrix.copy()
        k[0, 2] += 0.5      # Filament puts pixel centres at +0.5; OpenCV at integers
        k[1, 2] += 0.5
        self._renderer.setup_camera(k, extrinsic_matrix(camera), *self.size)   # near/far from the scene
        return np.asarray(self._renderer.render_to_image()).copy()

    def close(self) -> None:
        self._renderer = None


class LegacyBackend:
    """Open3D's ``Visualizer`` with an invisible window (EGL without a display), lights off."""

    name = "legacy"
    meshes_ok = True

    def __init__(self, camera: Camera, background: FloatArray) -> None:
        self._o3d = open3d_module()
        self.size = tuple(camera.image_size)
        self.background = np.asarray(background, np.float64)
        self._vis: Any = None
        self._canvas: tuple[int, int] | None = None
        self._groups: dict[str, list[Drawable]] = {}
        self._open(_canvas_for(camera)[0])

    def _open(self, canvas: tuple[int, int]) -> None:
        if self._vis is not None:
            self._vis.destroy_window()
        vis = self._o3d.visualization.Visualizer()
        with native_output_captured() as log:
            ok = vis.create_window(window_name="posestudio", width=canvas[0], height=canvas[1], visible=False)
        if not ok:
            log.seek(0)
            raise RenderUnavailable("Open3D's Visualizer could not open an invisible window (EGL): "
                                    f"{log.read().decode(errors='replace').strip()[-300:]}")
        opt = vis.get_render_option()
        opt.background_color = self.background
        opt.light_on = False
        opt.mesh_show_back_face = True
        self._vis, self._canvas = vis, canvas
        for group in self._groups.values():
            for d in group:
                vis.add_geometry(d.geometry, reset_bounding_box=True)
        self._line_width()

    def _line_width(self) -> None:
        widths = [d.line_width_px for g in self._groups.values() for d in g if d.line_width_px > 0]
        self._vis.get_render_option().line_width = max(widths, default=1.0)

    def show(self, drawables: list[Drawable], group: str) -> None:
        # the bounding box is reset each time: the legacy renderer takes its near and far planes from it
        # (the camera is set again before each render)
        for d in self._groups.pop(group, []):
            self._vis.remove_geometry(d.geometry, reset_bounding_box=True)
        for d in drawables:
            self._vis.add_geometry(d.geometry, reset_bounding_box=True)
        self._groups[group] = list(drawables)
        self._line_width()

    def render(self, camera: Camera) -> np.ndarray:
        w, h = camera.image_size
        if (w, h) != self.size:
            raise ValueError(f"camera is {camera.image_size}, renderer {self.size}")
        (cw, ch), (ox, oy), (cx, cy) = _canvas_for(camera)
        if self._canvas != (cw, ch):
            self._open((cw, ch))
        params = self._o3d.camera.PinholeCameraParameters()
        params.intrinsic = self._o3d.camera.PinholeCameraIntrinsic(cw, ch, camera.matrix[0, 0], camera.matrix[1, 1],
                                                                   cx, cy)
        params.extrinsic = extrinsic_matrix(camera)
        if not self._vis.get_view_control().convert_from_pinhole_camera_parameters(params, allow_arbitrary=True):
            raise RenderUnavailable("Open3D's Visualizer refused the camera parameters")
        self._vis.poll_events()
        self._vis.update_renderer()
        image = np.asarray(self._vis.capture_screen_float_buffer(do_render=True))
        return (np.clip(image[oy:oy + h, ox:ox + w], 0, 1) * 255).round().astype(np.uint8)

    def close(self) -> None:
        if self._vis is not None:
            self._vis.destroy_window()
            self._vis = None


def _canvas_for(camera: Camera) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float]]:
    """The legacy renderer's canvas for ``camera``: ``((width, height), (x, y) offset of the image
    in it, its principal point)``, pixels."""
    (cw, ox, cx), (ch, oy, cy) = (_centred_canvas(camera.matrix[0, 2], camera.image_size[0]),
                                  _centred_canvas(camera.matrix[1, 2], camera.image_size[1]))
    return (cw, ch), (ox, oy), (cx, cy)


def _centred_canvas(principal: float, size: int) -> tuple[int, int, float]:
    """A canvas whose centre (``canvas / 2 - 0.5``) is the principal point shifted by a whole offset.

    Returns:
        ``(canvas size, offset of the image in it, the canvas's principal point)``, pixels.
    """
    offset = max(0, int(np.ceil(size - 1 - 2 * principal)))
    canvas = max(int(round(2 * (principal + offset) + 1)), offset + size)
    return canvas, offset, canvas / 2 - 0.5


def open_backend(camera: Camera, background: FloatArray, renderer: str = "auto") -> Backend:
    """The first renderer that works, for images of ``camera.image_size``.

    Args:
        renderer: ``"auto"`` (``$POSESTUDIO_RENDERER`` if set, else legacy then Filament),
            ``"legacy"`` or ``"filament"``.
    Raises:
        RenderUnavailable: none works; the message says what each answered and what to install.
    """
    choice = os.environ.get("POSESTUDIO_RENDERER", "auto") if renderer == "auto" else renderer
    if choice not in RENDERERS:
        raise RenderUnavailable(f"unknown renderer {choice!r}; expected one of {', '.join(RENDERERS)}")
    order = ["legacy", "filament"] if choice == "auto" else [choice]
    errors = []
    for name in order:
        if name == "filament":
            works, why = filament_works()
            if not works:
                errors.append(f"filament: {why}")
                continue
        try:
            return (FilamentBackend if name == "filament" else LegacyBackend)(camera, background)
        except RenderUnavailable as exc:
            errors.append(f"{name}: {exc}")
    raise RenderUnavailable(f"cannot render offscreen ({'; '.join(errors)}); {INSTALL_HINT}")


class TakeRenderer:
    """A take's scene in an offscreen renderer: the still parts shown once, any instant rendered.

    Use as a context manager (the renderer is released on exit).

    Args:
        take: the skeletons.
        camera: the view (default :func:`~posestudio.viewer.scene.default_view_camera` of the whole
            take and the rig); a rig camera it coincides with is not drawn.
        rig: cameras drawn as frusta (None: none).
        style: how the scene looks; renderer: see :func:`open_backend`.
    Raises:
        RenderUnavailable: no renderer works here.
    """

    def __init__(self, take: Take, camera: Camera | None = None, rig: CameraRig | None = None,
                 style: SceneStyle | None = None, renderer: str = "auto") -> None:
        self.take, self.style = take, style or SceneStyle()
        self.camera = camera or default_view_camera(take.points, rig)
        skip = None
        if rig is not None and self.camera.name in rig.names:
            same = rig[self.camera.name]
            if np.allclose(same.rotation, self.camera.rotation) and np.allclose(same.translation,
                                                                                self.camera.translation):
                skip = self.camera.name
        self.backend = open_backend(self.camera, self.style.background, renderer)
        extent = floor_extent(take.points, self.style.grid_spacing_m, self.style.grid_margin_m)
        self.backend.show(static_geometry(extent, rig, self.style, skip_camera=skip), "static")
        self._width = self.style.line_width_px(self.camera.image_size[1])
        self._points_px = 0.0 if self.backend.meshes_ok else max(6.0, round(self.camera.image_size[1] / 90))

    @property
    def name(self) -> str:
        """The renderer in use: ``"filament"`` or ``"legacy"``."""
        return self.backend.name

    def render(self, frame: int) -> np.ndarray:
        """Frame ``frame`` (0-based) as ``(H, W, 3)`` uint8 RGB."""
        t = self.take
        self.backend.show(instant_geometry(t.points[frame], t.confidence[frame], t.layout, self.style, self._width,
                                           t.hues, self._points_px), "instant")
        return self.backend.render(self.camera)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "TakeRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Rendered:
    """A written render: the file, the renderer used, the image ``(width, height)`` and the frames."""

    path: Path
    renderer: str
    size: tuple[int, int]
    frames: int


def render_frames(take: Take, frames: Iterable[int], camera: Camera | None = None, rig: CameraRig | None = None,
                  style: SceneStyle | None = None, renderer: str = "auto") -> Iterator[np.ndarray]:
    """Render instants of a take, one ``(H, W, 3)`` uint8 RGB image per 0-based frame index; see
    :class:`TakeRenderer`."""
    with TakeRenderer(take, camera, rig, style, renderer) as r:
        for f in frames:
            yield r.render(f)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image as PNG, atomically (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: could not encode the image as PNG")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def render_png(path: str | Path, take: Take, frame: int | None = None, camera: Camera | None = None,
               rig: CameraRig | None = None, style: SceneStyle | None = None, renderer: str = "auto") -> Rendered:
    """One instant (default the middle frame) rendered to a PNG; see :class:`TakeRenderer`.

    Raises:
        IndexError: ``frame`` is outside the take.
    """
    frame = take.n_frames // 2 if frame is None else frame
    if not 0 <= frame < take.n_frames:
        raise IndexError(f"frame {frame} is outside the take (0..{take.n_frames - 1})")
    with TakeRenderer(take, camera, rig, style, renderer) as r:
        image = r.render(frame)
    return Rendered(write_png(path, image), r.name, tuple(r.camera.image_size), 1)


def render_mp4(path: str | Path, take: Take, camera: Camera | None = None, rig: CameraRig | None = None,
               style: SceneStyle | None = None, renderer: str = "auto",
               progress: Callable[[int, int | None], None] | None = None) -> Rendered:
    """Every frame rendered to an MP4 (``mp4v``, the take's frame rate), written to a temporary file
    in the same folder and renamed into place; see :class:`TakeRenderer`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.mp4")
    with TakeRenderer(take, camera, rig, style, renderer) as r:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(take.fps),
                                 tuple(r.camera.image_size))
        if not writer.isOpened():
            raise OSError(f"{path}: cannot open an mp4v video writer")
        try:
            for f in range(take.n_frames):
                writer.write(cv2.cvtColor(r.render(f), cv2.COLOR_RGB2BGR))
                if progress:
                    progress(f + 1, take.n_frames)
            writer.release()
            os.replace(tmp, path)
        finally:
            writer.release()
            tmp.unlink(missing_ok=True)
    return Rendered(path, r.name, tuple(r.camera.image_size), take.n_frames)
