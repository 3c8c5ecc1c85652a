"""An experiment's answer: measured beside predicted, as a terminal table and Markdown,
and for the shootout the sustainable rate per pair and a chart of p99 against rate."""

from __future__ import annotations

from pathlib import Path

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


def shootout_markdown(outcome: ExperimentOutcome, budget_ms: float) -> str:
    lines = [
        f"### server-shootout (p99 budget {budget_ms:g} ms)",
        "",
        "| app | server | sustainable req/s | p99 ms there | rates tried |",
        "|---|---|---:|---:|---|",
    ]
    for entry in sorted(outcome.shootout, key=lambda e: (e["app"], -(e["sustainable_rate"] or 0))):
        best = entry["sustainable_rate"]
        p99 = next((c["p99_ms"] for c in entry["curve"] if c["rate"] == best), None)
        tried = ", ".join(f"{c['rate']:g}" for c in entry["curve"])
        # Every step passed: the step limit, not the server, ended the climb.
        at_least = "≥ " if entry["curve"] and entry["curve"][-1]["rate"] == best else ""
        rate = "–" if best is None else f"{at_least}{best:g}"
        lines.append(
            f"| {entry['app']} | {entry['server']} | {rate} | "
            f"{'–' if p99 is None else f'{p99:.1f}'} | {tried} |"
        )
    return "\n".join(lines) + "\n"


def shootout_chart(outcome: ExperimentOutcome, path: Path, budget_ms: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    apps = sorted({e["app"] for e in outcome.shootout})
    fig, axes = plt.subplots(
        1, len(apps), figsize=(5.5 * len(apps), 4.5), squeeze=False, sharey=True
    )
    for ax, app in zip(axes[0], apps, strict=True):
        for entry in (e for e in outcome.shootout if e["app"] == app):
            curve = entry["curve"]
            ax.plot(
                [c["rate"] for c in curve],
                [max(c["p99_ms"], 0.1) for c in curve],
                marker="o",
                label=entry["server"],
            )
        ax.axhline(
            budget_ms, color="red", linestyle="--", linewidth=1, label=f"budget {budget_ms:g} ms"
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(app)
        ax.set_xlabel("offered rate (req/s, open model)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("p99 latency (ms, corrected)")
    fig.suptitle("server-shootout: p99 against offered rate")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
