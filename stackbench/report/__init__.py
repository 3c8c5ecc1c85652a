"""Reports: run directories → Markdown tables, PNG charts, one self-contained HTML page,
and the comparison of a run against a baseline (``python -m stackbench report``)."""

from stackbench.report.build import ReportOutcome, make_report
from stackbench.report.load import ReportError

__all__ = ["ReportError", "ReportOutcome", "make_report"]
