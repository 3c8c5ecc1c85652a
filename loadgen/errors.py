"""The errors loadgen raises for bad input or an unusable target (the CLI prints one
line and exits 2)."""

from __future__ import annotations


class LoadgenError(Exception):
    """Bad input or an unusable target: the CLI prints one line and exits 2."""


class ConfigError(LoadgenError):
    pass


class TargetUnreachable(LoadgenError):
    pass
