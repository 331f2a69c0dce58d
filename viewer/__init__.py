"""PoseStudio viewer."""
