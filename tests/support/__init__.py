"""Test support (not part of the package): toy models and data, and the multi-process training demo."""
