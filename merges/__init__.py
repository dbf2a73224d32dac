"""Merge recipes that become MergeKit YAML (see the merges issue; not built yet)."""
