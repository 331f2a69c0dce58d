"""Self-supervised 2D-to-3D lifting of one camera's keypoints (the seed's third model).

:class:`~.lifter.Lifter` lifts a take seen by one calibrated camera to 3D in metres;
``posestudio train lifting`` (:mod:`.train`) trains the network without 3D labels.
"""
