"""2D keypoint detectors behind one interface (:class:`Detector2D`): BlazePose and the TCE network."""
