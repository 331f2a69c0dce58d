"""PoseStudio: a multi-camera markerless motion-capture studio.

Subpackages live in the repository's top-level folders and install under this namespace:
``posestudio.calibration`` (``calibration/``), ``posestudio.capture`` (``capture/``),
``posestudio.reconstruction``, ``posestudio.viewer`` and ``posestudio.models``.
"""

__version__ = "0.1.0"
