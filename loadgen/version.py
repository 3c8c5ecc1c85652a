"""loadgen's version (its own module, so that no module imports the package to read it)."""

__version__ = "0.1.0"
