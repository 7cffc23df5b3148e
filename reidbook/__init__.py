"""reidbook: compressing person re-identification models, one paper at a time."""
__version__ = "0.1.0"
