"""The geometry core every studio package imports downward from; it imports none of them.

Camera model and rig with their files (:mod:`.camera`, :mod:`.rig`, :mod:`.rig_file`), rotations
(:mod:`.rotations`), one batched similarity alignment (:mod:`.alignment`), weighted DLT
(:mod:`.dlt`), pinhole projection and its Jacobian (:mod:`.projection`), robust loss weights
(:mod:`.robust`), skeleton helpers (:mod:`.skeleton`), pose metrics (:mod:`.pose_metrics`), the
studio's interchange files (:mod:`.keypoints_file`, :mod:`.bvh`), safe file writing
(:mod:`.files`), the error users see (:mod:`.errors`) and array aliases (:mod:`.arrays`).
"""
