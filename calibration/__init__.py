"""PoseStudio calibration."""
