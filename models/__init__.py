"""PoseStudio models."""
