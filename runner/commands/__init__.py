"""Utility commands (``runner runs``, ``compare``, ``doctor``, ...): each module's ``main(argv) -> int``."""
