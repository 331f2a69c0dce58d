"""Skeleton solving: a take's 3D joints -> an animation skeleton (bone lengths, joint rotations).

``solve_skeleton(points3d)`` returns a :class:`SkeletonSolution`; its ``to_bvh()`` is what
``posestudio export --bvh`` writes. The skeleton's names and rest pose: :mod:`.definition`.
"""

from .definition import JOINT_NAMES, STUDIO_SKELETON
from .solution import SkeletonSolution, rotation_jumps_deg
from .solve import SolveOptions, solve_skeleton

__all__ = ["JOINT_NAMES", "STUDIO_SKELETON", "SkeletonSolution", "SolveOptions", "rotation_jumps_deg",
           "solve_skeleton"]
