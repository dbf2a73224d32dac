"""Mechanism shared by every task family: data loading, label parsing, metrics."""
