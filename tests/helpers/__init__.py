"""Helpers shared by test modules: data and objects a test builds, never a test itself."""
