"""PoseStudio capture."""
