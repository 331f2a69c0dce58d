"""Blender-side script: import a BVH as Blender's own importer does, report the armature's joints.

Run by Blender, not by PoseStudio's Python (it imports ``bpy``)::

    blender -b --factory-startup --python-exit-code 1 --python blender_import.py -- IN.bvh OUT.json SCALE [OUT.fbx]

It imports ``IN.bvh`` with ``bpy.ops.import_anim.bvh`` (Y up and -Z forward, Blender's defaults,
``global_scale=SCALE`` metres per file unit), evaluates every frame, and writes ``OUT.json`` with
``names`` (bone names), ``heads`` ``(F, B, 3)`` and ``tails`` ``(F, B, 3)``: the bones' head and
tail positions in Blender's world (metres, Z up), and ``fps`` (plain JSON: Debian's Blender has no
numpy). With ``OUT.fbx`` it also exports
the armature and its animation as FBX, the format animators ask for most.

Debian's Blender 3.4 runs on Python 3.11, whose ``open`` rejects the mode ``"rU"`` that the BVH
importer passes; ``builtins.open`` is wrapped to drop the ``U`` (universal newlines are the
default in Python 3).
"""

import builtins
import json
import sys

import bpy

_open = builtins.open


def _open_without_u(file, mode="r", *args, **kwargs):
    return _open(file, mode.replace("U", "") if isinstance(mode, str) else mode, *args, **kwargs)


def main(argv):
    bvh_path, out_path, scale = argv[0], argv[1], float(argv[2])
    fbx_path = argv[3] if len(argv) > 3 else None
    bpy.ops.wm.read_factory_settings(use_empty=True)
    builtins.open = _open_without_u
    try:
        bpy.ops.import_anim.bvh(filepath=bvh_path, global_scale=scale, axis_forward="-Z", axis_up="Y",
                                rotate_mode="NATIVE", frame_start=1, use_fps_scale=False,
                                update_scene_fps=True, update_scene_duration=True)
    finally:
        builtins.open = _open
    armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    scene = bpy.context.scene
    first, last = armature.animation_data.action.frame_range  # the scene may be longer (250 by default)
    scene.frame_start, scene.frame_end = int(round(first)), int(round(last))
    bones = list(armature.pose.bones)
    heads, tails = [], []
    for frame in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(frame)
        world = armature.matrix_world
        heads.append([tuple(world @ b.head) for b in bones])
        tails.append([tuple(world @ b.tail) for b in bones])
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"names": [b.name for b in bones], "heads": heads, "tails": tails,
                   "fps": scene.render.fps / scene.render.fps_base}, f)
    if fbx_path:
        bpy.ops.export_scene.fbx(filepath=fbx_path, check_existing=False, use_selection=False,
                                 object_types={"ARMATURE"}, add_leaf_bones=False, bake_anim=True,
                                 axis_forward="-Z", axis_up="Y")


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1:])
