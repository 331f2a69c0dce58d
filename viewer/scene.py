"""What the 3D viewer draws at one instant of a take, as numpy arrays and as Open3D geometry.

The studio world is metres, right-handed, Z up. One instant shows:

* the skeletons: bones as lines in one hue per person (:data:`PERSON_HUES`, by the person's
  position in the take or by id), joints as small spheres (square points for renderers that cannot
  draw meshes) coloured by their confidence (:func:`confidence_colours`: red 0 -> yellow 0.5 ->
  green 1; grey where the confidence is unknown). A joint whose position is NaN is hidden, and so
  is every bone touching it;
* the rig's cameras as frusta (:mod:`posestudio.viewer.rig_geometry`);
* a floor grid on the world's ``z = 0`` plane sized to the take, and the world axes at the origin
  (X red, Y green, Z blue, :data:`AXIS_LENGTH_M` long).

The numpy part (line endpoints, indices, colours; the virtual cameras) needs no Open3D and is what
the tests check; :func:`instant_geometry` and :func:`static_geometry` wrap it into Open3D objects
(imported inside them: Open3D takes a second to import and needs the system's libusb).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17, KeypointLayout, layout_from_joint_names
from posestudio.viewer.rig_geometry import rig_line_set

#: Bone colours (RGB in [0, 1]), one per person in the take's order, cycling: azure, magenta,
#: violet, white, gold. Chosen away from the confidence colours (red-yellow-green) and the axes.
PERSON_HUES: FloatArray = np.array([[0.0, 0.7, 1.0], [1.0, 0.3, 0.8], [0.6, 0.4, 1.0], [0.95, 0.95, 0.95],
                                    [0.8, 0.6, 0.3]])
#: Confidence colour map: confidence stops and their RGB colours, linearly interpolated.
CONFIDENCE_STOPS: FloatArray = np.array([0.0, 0.5, 1.0])
CONFIDENCE_COLOURS: FloatArray = np.array([[0.9, 0.1, 0.1], [0.95, 0.85, 0.1], [0.1, 0.8, 0.2]])
#: Colour of a joint whose position is known but whose confidence is NaN.
UNKNOWN_CONFIDENCE_COLOUR: FloatArray = np.array([0.6, 0.6, 0.6])
BACKGROUND: FloatArray = np.array([0.11, 0.12, 0.14])
GRID_COLOUR: FloatArray = np.array([0.33, 0.34, 0.37])
AXIS_COLOURS: FloatArray = np.array([[0.9, 0.15, 0.15], [0.15, 0.8, 0.15], [0.15, 0.25, 1.0]])
AXIS_LENGTH_M = 0.5


@dataclass(frozen=True)
class SceneStyle:
    """How the scene is drawn.

    Attributes:
        joint_radius_m: joint sphere radius, metres (0: no spheres).
        bone_width_px: bone line width, pixels (None: ``max(2, height / 360)`` of the image).
        grid_spacing_m: floor grid spacing, metres; grid_margin_m: grid beyond the joints, metres.
        frustum_depth_m: camera pyramids' depth, metres.
        show_grid, show_axes, show_frusta: draw the floor grid, world axes, camera frusta.
        background: RGB in [0, 1].
    """

    joint_radius_m: float = 0.03
    bone_width_px: float | None = None
    grid_spacing_m: float = 0.5
    grid_margin_m: float = 1.0
    frustum_depth_m: float = 0.3
    show_grid: bool = True
    show_axes: bool = True
    show_frusta: bool = True
    background: FloatArray = field(default_factory=lambda: BACKGROUND.copy())

    def line_width_px(self, image_height: int) -> float:
        """Bone line width for an image ``image_height`` pixels high."""
        return float(self.bone_width_px) if self.bone_width_px else max(2.0, round(image_height / 360))


@dataclass
class Take:
    """A take to draw: every person's joints over time, in a known layout's order.

    Attributes:
        points: ``(F, P, J, 3)`` metres in the world frame, NaN where unknown.
        confidence: ``(F, P, J)`` in [0, 1], NaN where unknown.
        layout: the joints' layout (its ``bone_indices`` are drawn).
        fps: frames per second.
        labels: ``(P,)`` a name per person (``"subject"``, ``"person_3"``).
        ids: ``(P,)`` integers choosing each person's bone hue (:func:`person_hues`; default the
            position), e.g. a live stream's person ids, so that a person keeps their colour.
    """

    points: FloatArray
    confidence: FloatArray
    layout: KeypointLayout = H36M17
    fps: float = 30.0
    labels: tuple[str, ...] = ()
    ids: IntArray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, np.float64)
        self.confidence = np.asarray(self.confidence, np.float64)
        if self.points.ndim != 4 or self.points.shape[-1] != 3:
            raise ValueError(f"points must be (frames, people, joints, 3), got {self.points.shape}")
        if self.confidence.shape != self.points.shape[:-1]:
            raise ValueError(f"confidence must be {self.points.shape[:-1]}, got {self.confidence.shape}")
        if self.points.shape[2] != self.layout.n_joints:
            raise ValueError(f"{self.points.shape[2]} joints for layout {self.layout.name!r} "
                             f"({self.layout.n_joints} joints)")
        if not self.labels:
            self.labels = tuple(f"person {p}" for p in range(self.points.shape[1]))
        if self.ids is not None:
            self.ids = np.asarray(self.ids, np.int64).reshape(self.points.shape[1])

    @property
    def hues(self) -> FloatArray:
        """``(P, 3)`` each person's bone colour."""
        return person_hues(self.n_people, self.ids)

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_people(self) -> int:
        return int(self.points.shape[1])

    @classmethod
    def from_people(cls, people: Sequence[tuple[FloatArray, FloatArray]], joint_names: Sequence[str], fps: float,
                    labels: Sequence[str] = (), ids: IntArray | None = None) -> "Take":
        """A take from per-person ``(points (F_p, J, 3), confidence (F_p, J))`` in ``joint_names``' order.

        People with fewer frames are padded with NaN to the longest; joints are reordered into
        the layout that ``joint_names`` form.

        Raises:
            ValueError: no known layout has exactly these joints (message names them).
        """
        layout, order = layout_order(tuple(str(n) for n in joint_names))
        frames = max(p.shape[0] for p, _ in people)
        pts = np.full((frames, len(people), layout.n_joints, 3), np.nan)
        conf = np.full((frames, len(people), layout.n_joints), np.nan)
        for k, (p, c) in enumerate(people):
            pts[: p.shape[0], k] = p[:, order]
            conf[: c.shape[0], k] = c[:, order]
        return cls(pts, conf, layout, float(fps), tuple(labels), ids)


@lru_cache(maxsize=16)
def layout_order(joint_names: tuple[str, ...]) -> tuple[KeypointLayout, IntArray]:
    """The layout ``joint_names`` form and ``order (J,)``: ``data[..., order, :]`` is in the layout's order.

    Raises:
        ValueError: no known layout has exactly these joints (message names them).
    """
    layout = layout_from_joint_names(joint_names)
    given = [n.strip().lower() for n in joint_names]
    return layout, np.array([given.index(j) for j in layout.joints], np.int64)


@dataclass(frozen=True)
class Lines:
    """Coloured line segments: ``points (N, 3)`` metres, ``lines (M, 2)`` point indices, ``colours (M, 3)`` RGB."""

    points: FloatArray
    lines: IntArray
    colours: FloatArray

    @property
    def segments(self) -> FloatArray:
        """``(M, 2, 3)`` each segment's two endpoints, metres."""
        return self.points[self.lines]


@dataclass(frozen=True)
class Markers:
    """Joint markers: ``centres (K, 3)`` metres, ``colours (K, 3)`` RGB in [0, 1]."""

    centres: FloatArray
    colours: FloatArray


# ---------------------------------------------------------------------------------------------
# numpy: what is drawn

def confidence_colours(confidence: FloatArray) -> FloatArray:
    """RGB ``(..., 3)`` in [0, 1] of confidences ``(...)``.

    Linear between the stops: 0 red (0.9, 0.1, 0.1), 0.5 yellow (0.95, 0.85, 0.1), 1 green
    (0.1, 0.8, 0.2); values are clipped to [0, 1]; NaN gives grey (0.6, 0.6, 0.6).
    """
    c = np.asarray(confidence, np.float64)
    flat = np.clip(np.nan_to_num(c.ravel(), nan=0.0), 0.0, 1.0)
    rgb = np.stack([np.interp(flat, CONFIDENCE_STOPS, CONFIDENCE_COLOURS[:, k]) for k in range(3)], axis=-1)
    rgb[np.isnan(c.ravel())] = UNKNOWN_CONFIDENCE_COLOUR
    return rgb.reshape(c.shape + (3,))


def person_hues(count: int, offsets: IntArray | None = None) -> FloatArray:
    """``(count, 3)`` bone colours: :data:`PERSON_HUES` cycled, by position (or by ``offsets (count,)``)."""
    idx = np.arange(count) if offsets is None else np.asarray(offsets, np.int64)
    return PERSON_HUES[idx % len(PERSON_HUES)]


def skeleton_lines(points: FloatArray, bones: IntArray, hues: FloatArray | None = None) -> Lines:
    """The bones of every person whose two joints are known.

    Args:
        points: ``(P, J, 3)`` metres (or ``(J, 3)`` for one person), NaN where unknown.
        bones: ``(B, 2)`` joint index pairs (a layout's ``bone_indices``).
        hues: ``(P, 3)`` RGB per person (default :func:`person_hues`).
    Returns:
        :class:`Lines` over the known joints only (``points (N, 3)`` with N the number of finite
        joints, people in order); ``colours`` the person's hue.
    """
    pts = np.asarray(points, np.float64)
    pts = pts[None] if pts.ndim == 2 else pts
    n_people, n_joints = pts.shape[:2]
    hues = person_hues(n_people) if hues is None else np.asarray(hues, np.float64).reshape(n_people, 3)
    flat = pts.reshape(-1, 3)
    known = np.isfinite(flat).all(axis=1)
    new_index = np.cumsum(known) - 1
    pairs = (np.asarray(bones, np.int64)[None] + n_joints * np.arange(n_people)[:, None, None]).reshape(-1, 2)
    keep = known[pairs].all(axis=1)
    owner = np.repeat(np.arange(n_people), len(bones))[keep]
    return Lines(flat[known], new_index[pairs[keep]].astype(np.int64), hues[owner])


def joint_markers(points: FloatArray, confidence: FloatArray) -> Markers:
    """Known joints ``(P, J, 3)`` (or ``(J, 3)``) with their confidence colours (``confidence (P, J)``)."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    conf = np.asarray(confidence, np.float64).reshape(-1)
    known = np.isfinite(pts).all(axis=1)
    return Markers(pts[known], confidence_colours(conf[known]))


def floor_extent(points: FloatArray, spacing_m: float = 0.5, margin_m: float = 1.0,
                 default: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0)) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` metres: the finite points' ground footprint plus ``margin_m``,
    snapped outwards to ``spacing_m``; ``default`` when no point is finite.

    Args:
        points: ``(..., 3)`` metres (all joints over all frames).
    """
    xy = np.asarray(points, np.float64).reshape(-1, 3)
    xy = xy[np.isfinite(xy).all(axis=1), :2]
    if not len(xy):
        return default
    lo = np.floor((xy.min(axis=0) - margin_m) / spacing_m) * spacing_m
    hi = np.ceil((xy.max(axis=0) + margin_m) / spacing_m) * spacing_m
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def floor_grid(extent: tuple[float, float, float, float], spacing_m: float = 0.5) -> Lines:
    """Grid lines on the ``z = 0`` plane over ``extent = (x_min, x_max, y_min, y_max)`` metres."""
    x0, x1, y0, y1 = extent
    xs = np.arange(x0, x1 + spacing_m / 2, spacing_m)
    ys = np.arange(y0, y1 + spacing_m / 2, spacing_m)
    along_y = np.stack([np.stack([xs, np.full_like(xs, y0)], -1), np.stack([xs, np.full_like(xs, y1)], -1)], 1)
    along_x = np.stack([np.stack([np.full_like(ys, x0), ys], -1), np.stack([np.full_like(ys, x1), ys], -1)], 1)
    seg = np.concatenate([along_y, along_x])                       # (M, 2, 2)
    pts = np.concatenate([seg.reshape(-1, 2), np.zeros((2 * len(seg), 1))], axis=1)
    lines = np.arange(2 * len(seg), dtype=np.int64).reshape(-1, 2)
    return Lines(pts, lines, np.tile(GRID_COLOUR, (len(seg), 1)))


def world_axes(length_m: float = AXIS_LENGTH_M) -> Lines:
    """The world axes from the origin: X red, Y green, Z blue, ``length_m`` metres long."""
    pts = np.vstack([np.zeros(3), np.eye(3) * length_m])
    return Lines(pts, np.array([[0, 1], [0, 2], [0, 3]], np.int64), AXIS_COLOURS.copy())


# ---------------------------------------------------------------------------------------------
# numpy: the virtual camera

def look_at_rotation(eye: FloatArray, target: FloatArray, up: FloatArray = np.array([0.0, 0.0, 1.0])) -> FloatArray:
    """``(3, 3)`` world-to-camera rotation (OpenCV axes: x right, y down, z forward) of a camera at
    ``eye`` looking at ``target`` without roll (``up`` points up in the image)."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:          # looking straight up or down: any horizontal x
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def default_view_camera(points: FloatArray, rig: CameraRig | None = None, size: tuple[int, int] = (1280, 720),
                        azimuth_deg: float = -60.0, elevation_deg: float = 25.0, fov_deg: float = 45.0,
                        margin: float = 0.08) -> Camera:
    """A pinhole camera framing every finite point and the rig's cameras from a 3/4 elevated angle.

    The camera looks at the centre of the points' bounding box from the direction
    ``(cos el cos az, cos el sin az, sin el)``, as far back as needed for every point to lie
    inside the image with ``margin`` (a fraction of the half-width/height) to spare.

    Args:
        points: ``(..., 3)`` metres (all joints over all frames); NaN ignored. With none finite and
            no rig, a 2 x 2 x 2 m volume above the origin is framed.
        rig: its camera centres are framed too.
        size: ``(width, height)`` pixels.
        azimuth_deg, elevation_deg: viewing direction, degrees; fov_deg: vertical field of view.
    Returns:
        A :class:`Camera` named ``"view"`` without distortion.
    """
    w, h = int(size[0]), int(size[1])
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if rig is not None and len(rig):
        pts = np.vstack([pts, rig.centers])
    if not len(pts):
        pts = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 2.0]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    target = (lo + hi) / 2
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    rot = look_at_rotation(target + direction, target)
    f = (h / 2) / np.tan(np.radians(fov_deg) / 2)
    tan_x, tan_y = (1 - margin) * (w / 2) / f, (1 - margin) * (h / 2) / f
    # camera at target - d * forward: a point's camera coordinates are (x, y, z0 + d)
    local = (pts - target) @ rot.T
    d = max(float(np.max(np.abs(local[:, 0]) / tan_x - local[:, 2])),
            float(np.max(np.abs(local[:, 1]) / tan_y - local[:, 2])), 0.5)
    centre = target - d * rot[2]
    k = np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])
    return Camera("view", (w, h), k, np.zeros(5), rot, -rot @ centre)


def rig_view_camera(rig: CameraRig, name: str, size: tuple[int, int] | None = None) -> Camera:
    """One of the rig's cameras as a pinhole camera (distortion dropped), its intrinsics scaled to ``size``.

    Raises:
        KeyError: no camera ``name`` (the message lists the rig's cameras).
    """
    cam = rig[name]
    w0, h0 = cam.image_size
    w, h = (w0, h0) if size is None else (int(size[0]), int(size[1]))
    sx, sy = w / w0, h / h0
    k = cam.matrix.copy()
    k[0, 0], k[0, 1], k[1, 1] = k[0, 0] * sx, k[0, 1] * sx, k[1, 1] * sy
    # pixel centres at integer coordinates: pixel i covers [i - 0.5, i + 0.5] at either size
    k[0, 2], k[1, 2] = (k[0, 2] + 0.5) * sx - 0.5, (k[1, 2] + 0.5) * sy - 0.5
    return Camera(cam.name, (w, h), k, np.zeros(5), cam.rotation.copy(), cam.translation.copy())


# ---------------------------------------------------------------------------------------------
# Open3D objects

@dataclass(frozen=True)
class Drawable:
    """One named Open3D geometry and how to draw it: ``line_width_px`` for a LineSet,
    ``point_size_px`` for a PointCloud (both 0 for a mesh)."""

    name: str
    geometry: Any
    line_width_px: float = 0.0
    point_size_px: float = 0.0


def line_set(lines: Lines) -> Any:
    """An ``open3d.geometry.LineSet`` of :class:`Lines` (colours per line)."""
    # Imported here: open3d takes a second to import and needs the system's libusb; only drawing needs it.
    import open3d as o3d

    ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(lines.points), o3d.utility.Vector2iVector(lines.lines))
    ls.colors = o3d.utility.Vector3dVector(lines.colours)
    return ls


@lru_cache(maxsize=4)
def unit_sphere(resolution: int = 6) -> tuple[FloatArray, IntArray]:
    """A unit sphere's ``vertices (V, 3)`` and ``triangles (T, 3)`` (Open3D's, outward faces)."""
    import open3d as o3d  # see line_set

    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=1.0, resolution=resolution)
    return np.asarray(mesh.vertices).copy(), np.asarray(mesh.triangles).astype(np.int64)


def tile_spheres(centres: FloatArray, colours: FloatArray, radius_m: float, template: tuple[FloatArray, IntArray]
                 ) -> tuple[FloatArray, IntArray, FloatArray]:
    """One mesh of a sphere at each centre: a unit sphere ``template (vertices (V, 3), triangles (T, 3))``
    scaled and copied.

    Returns:
        ``vertices (K V, 3)`` metres, ``triangles (K T, 3)``, ``vertex_colours (K V, 3)``.
    """
    verts, tris = template
    k = len(centres)
    v = (np.asarray(centres, np.float64)[:, None] + radius_m * verts[None]).reshape(-1, 3)
    t = (tris[None] + len(verts) * np.arange(k)[:, None, None]).reshape(-1, 3)
    c = np.repeat(np.asarray(colours, np.float64), len(verts), axis=0)
    return v, t, c


def sphere_mesh(markers: Markers, radius_m: float, resolution: int = 6) -> Any:
    """An ``open3d.geometry.TriangleMesh``: a sphere per marker in its colour."""
    import open3d as o3d  # see line_set

    v, t, c = tile_spheres(markers.centres, markers.colours, radius_m, unit_sphere(resolution))
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(t.astype(np.int32)))
    mesh.vertex_colors = o3d.utility.Vector3dVector(c)
    return mesh


def point_cloud(markers: Markers) -> Any:
    """An ``open3d.geometry.PointCloud`` of the markers' centres in their colours."""
    import open3d as o3d  # see line_set

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(markers.centres))
    cloud.colors = o3d.utility.Vector3dVector(markers.colours)
    return cloud


def instant_geometry(points: FloatArray, confidence: FloatArray, layout: KeypointLayout, style: SceneStyle,
                     line_width_px: float, hues: FloatArray | None = None, joint_points_px: float = 0.0
                     ) -> list[Drawable]:
    """The skeletons at one instant: ``"bones"`` (LineSet) and ``"joints"`` (spheres, or points).

    Args:
        points: ``(P, J, 3)`` metres, NaN where unknown; confidence: ``(P, J)``.
        line_width_px: bone width, pixels.
        hues: ``(P, 3)`` bone colours (default by position, :func:`person_hues`).
        joint_points_px: when positive, joints are drawn as square points this many pixels wide
            instead of spheres of ``style.joint_radius_m`` (for renderers that cannot draw meshes).
    Returns:
        The drawables that have something to draw (none for an empty instant).
    """
    bones = skeleton_lines(points, layout.bone_indices, hues)
    out = []
    if len(bones.lines):
        out.append(Drawable("bones", line_set(bones), line_width_px))
    markers = joint_markers(points, confidence)
    if len(markers.centres) and style.joint_radius_m > 0:
        if joint_points_px > 0:
            out.append(Drawable("joints", point_cloud(markers), point_size_px=joint_points_px))
        else:
            out.append(Drawable("joints", sphere_mesh(markers, style.joint_radius_m)))
    return out


def static_geometry(extent: tuple[float, float, float, float], rig: CameraRig | None, style: SceneStyle,
                    skip_camera: str | None = None) -> list[Drawable]:
    """What stays still: ``"grid"`` over ``extent`` (see :func:`floor_extent`), ``"axes"``, ``"frusta"``.

    Args:
        rig: the cameras drawn as frusta (None: none).
        skip_camera: a camera left out (the one the view is rendered from).
    """
    out = []
    if style.show_grid:
        out.append(Drawable("grid", line_set(floor_grid(extent, style.grid_spacing_m)), 1.0))
    if style.show_axes:
        out.append(Drawable("axes", line_set(world_axes()), 2.0))
    if style.show_frusta and rig is not None:
        frusta = rig_line_set(rig, style.frustum_depth_m)
        if skip_camera in rig.names:       # 8 lines per camera, in the rig's order (colours kept)
            keep = np.repeat(np.array(rig.names) != skip_camera, 8)
            frusta.lines = type(frusta.lines)(np.asarray(frusta.lines)[keep])
            frusta.colors = type(frusta.colors)(np.asarray(frusta.colors)[keep])
        if len(frusta.lines):
            out.append(Drawable("frusta", frusta, 1.0))
    return out
