"""Pairs measured on different Pythons stay apart in a report, unless asked to compare.

Synthetic run directories (tests/report/synthetic.py) whose results record the server's
interpreter: the same pair on 3.11 and on 3.13 is two rows, each labelled with its Python;
a comparison matches them only with ``across_interpreters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackbench.report import ReportError, make_report
from tests.report.synthetic import result, write_run


def _on(python: str, document: dict[str, Any], gil: bool = True) -> dict[str, Any]:
    document["interpreter"] = {
        "version": python,
        "implementation": "CPython",
        "executable": f"/venvs/{python}/bin/python",
        "free_threaded": not gil,
        "gil_enabled": gil,
    }
    return document


def test_one_pair_on_two_pythons_is_two_labelled_rows(tmp_path: Path) -> None:
    run = write_run(
        tmp_path,
        "both",
        [
            _on("3.11.7", result("both", "gino_style", "uvicorn", 1000.0)),
            _on("3.13.0", result("both", "gino_style", "uvicorn", 1300.0, scenario="json")),
        ],
    )
    markdown = make_report([run], output=tmp_path / "out").markdown.read_text()
    assert "gino_style @ uvicorn · py3.11" in markdown
    assert "gino_style @ uvicorn · py3.13" in markdown


def test_two_runs_of_one_pair_on_two_pythons_merge_instead_of_colliding(tmp_path: Path) -> None:
    old = write_run(
        tmp_path, "py311", [_on("3.11.7", result("a", "fastapi_sqla", "uvicorn", 1000))]
    )
    new = write_run(
        tmp_path, "py313", [_on("3.13.0", result("b", "fastapi_sqla", "uvicorn", 1300))]
    )
    other = write_run(tmp_path, "other", [result("c", "tortoise", "uvicorn", 800)])
    # (three directories: two would be read as a baseline and a new run)
    # Without interpreters recorded the same pair in two runs is a mistake...
    plain_a = write_run(tmp_path, "a", [result("a", "fastapi_sqla", "uvicorn", 1000)])
    plain_b = write_run(tmp_path, "b", [result("b", "fastapi_sqla", "uvicorn", 1300)])
    with pytest.raises(ReportError, match="is in both"):
        make_report([plain_a, plain_b, other], output=tmp_path / "x")
    # ... on two Pythons it is two rows of one report.
    outcome = make_report([old, new, other], output=tmp_path / "out")
    markdown = outcome.markdown.read_text()
    assert "· py3.11" in markdown and "· py3.13" in markdown


def test_a_comparison_matches_pythons_only_when_asked(tmp_path: Path) -> None:
    base = write_run(
        tmp_path, "py311", [_on("3.11.7", result("a", "fastapi_sqla", "uvicorn", 1000))]
    )
    new = write_run(
        tmp_path, "py313", [_on("3.13.0", result("b", "fastapi_sqla", "uvicorn", 1300))]
    )
    apart = make_report([new], baseline=[base], output=tmp_path / "apart")
    assert all(change.base is None or change.new is None for change in apart.changes)
    assert any("--across-interpreters" in change.note for change in apart.changes)
    together = make_report(
        [new], baseline=[base], output=tmp_path / "together", across_interpreters=True
    )
    (change,) = together.changes
    assert change.base is not None and change.new is not None
    assert change.rps_change == pytest.approx(0.3)


def test_the_gil_off_is_its_own_python(tmp_path: Path) -> None:
    run = write_run(
        tmp_path,
        "ft",
        [
            _on("3.13.0", result("ft", "django_sync", "gunicorn-gthread", 900.0)),
            _on(
                "3.13.0",
                result("ft", "django_sync", "gunicorn-gthread", 1100.0, scenario="json"),
                gil=False,
            ),
        ],
    )
    markdown = make_report([run], output=tmp_path / "out").markdown.read_text()
    assert "django_sync @ gunicorn-gthread · py3.13t" in markdown
    assert "django_sync @ gunicorn-gthread · py3.13 " in markdown or (
        "django_sync @ gunicorn-gthread · py3.13|" in markdown
    )
