"""An experiment's answer: measured beside predicted, as a terminal table and Markdown."""

from __future__ import annotations

from rich.table import Table

from stackbench.experiments import TOLERANCE
from stackbench.experiments.run import ExperimentOutcome


def terminal_table(title: str, headers: list[str], body: list[list[str]], labels: int) -> Table:
    """A table for the terminal: the first ``labels`` columns left, the numbers right."""
    shown = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        shown.add_column(header, justify="left" if index < labels else "right")
    for row in body:
        shown.add_row(*row)
    return shown


def markdown_table(headers: list[str], body: list[list[str]], labels: int) -> list[str]:
    """The same as Markdown lines: the first ``labels`` columns left, the numbers right."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * labels + "---:|" * (len(headers) - labels),
        *("| " + " | ".join(row) + " |" for row in body),
    ]


def cells_markdown(outcome: ExperimentOutcome) -> str:
    lines = [
        f"### {outcome.experiment.name}",
        "",
        f"**{outcome.experiment.question}**",
        "",
        "| app @ server | workers | endpoint | predicted s | measured s | ratio | why |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for row in outcome.rows:
        cell = row.cell
        measured = "failed" if row.measured_s is None else f"{row.measured_s:.2f}"
        ratio = "–" if row.ratio is None else f"{row.ratio:.2f}" + ("" if row.within else " ⚠")
        lines.append(
            f"| {cell.app}{cell.prefix} @ {cell.server} | {cell.workers} | {cell.endpoint} | "
            f"{cell.predicted_s:.1f} | {measured} | {ratio} | {cell.why} |"
        )
    lines += ["", f"⚠: measured more than {TOLERANCE:.0%} away from the prediction.", ""]
    if outcome.experiment.notes:
        lines += [outcome.experiment.notes, ""]
    return "\n".join(lines)


def cells_table(outcome: ExperimentOutcome) -> Table:
    table = Table(title=outcome.experiment.question, title_justify="left")
    for column in (
        "app @ server",
        "workers",
        "endpoint",
        "predicted s",
        "measured s",
        "ratio",
        "why",
    ):
        table.add_column(
            column, justify="right" if column[0] in "pmrw" and column != "why" else "left"
        )
    for row in outcome.rows:
        cell = row.cell
        if row.measured_s is None:
            measured, ratio = f"[red]failed[/red] {row.reason or ''}"[:70], "–"
        else:
            measured = f"{row.measured_s:.2f}"
            style = "green" if row.within else "yellow"
            ratio = f"[{style}]{row.ratio:.2f}[/{style}]"
        table.add_row(
            f"{cell.app}{cell.prefix} @ {cell.server}",
            str(cell.workers),
            cell.endpoint,
            f"{cell.predicted_s:.1f}",
            measured,
            ratio,
            cell.why,
        )
    return table
