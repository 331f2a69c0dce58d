"""Dataset adapters: recorded motion from other sources as PoseStudio poses (H36M17, metres, Z up)."""
