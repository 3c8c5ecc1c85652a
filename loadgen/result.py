"""The result of a run (:class:`Result`): its numbers (:class:`~loadgen.outcome.Outcome`)
and its text report (:mod:`loadgen.report`)."""

from __future__ import annotations

from .outcome import PERCENTILES, REPORT_VERSION, Outcome, latency_block
from .report import text_report

__all__ = ["PERCENTILES", "REPORT_VERSION", "Result", "latency_block"]


class Result(Outcome):
    """What :func:`loadgen.run` returns.

    Main attributes: ``config``, ``stats`` (raw merged :class:`~loadgen.stats.Stats`),
    ``uncorrected`` / ``corrected`` / ``latency`` (headline) histograms, ``requests``,
    ``responses``, ``errors`` (dict kind -> count), ``elapsed`` (s), ``rps``.
    Methods: ``percentile(p, corrected=None)`` (seconds), ``to_dict()`` (the JSON
    report), ``to_json()``, ``text()`` (the hey-like report), ``passed`` /
    ``exit_code`` (thresholds: 0 or 99).
    """

    def text(self) -> str:
        return text_report(self)
