"""Leaderboard of scored checkpoints (see the leaderboard issue; not built yet)."""
