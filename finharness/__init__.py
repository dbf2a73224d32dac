"""The finharness command line: the roof over fin_tasks, harness, training, merges,
leaderboard and study (see docs/architecture.md)."""
