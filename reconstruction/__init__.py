"""PoseStudio reconstruction."""
