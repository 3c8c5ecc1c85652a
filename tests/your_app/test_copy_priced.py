"""A copy of fastapi_sqla with one middleware, benched beside the original in one run
(issue 21, deliverable 5): the report prices the middleware (``--against``) and, with
callgrind, the features experiment counts it in instructions per request.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from stackbench import callgrind
from stackbench.experiments import features
from stackbench.experiments.features import BASELINE
from stackbench.matrix import Pair
from stackbench.options import BenchOptions
from tests.harness.runs import result_documents
from tests.your_app.commands import SHORT, stackbench, the_run_dir
from tests.your_app.made_here import middleware_copy

# Under callgrind a server takes minutes to start and answer on a busy 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_copy_with_one_middleware_is_priced_beside_the_original(tmp_path: Path) -> None:
    copy = middleware_copy(tmp_path)
    output = tmp_path / "out"
    done = stackbench(
        "bench", "--pairs", f"fastapi_sqla@uvicorn,{copy}@uvicorn", "--scenarios", "json",
        "--output", str(output), *SHORT, owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = the_run_dir(output)
    by_app = {d["app"]: d for d in result_documents(run_dir)}
    assert set(by_app) == {"fastapi_sqla", "fastapi_timed"}
    assert by_app["fastapi_timed"]["app_source"]["path"] == str(copy)
    assert by_app["fastapi_sqla"]["app_source"]["git"]["commit"]  # the repository's
    report = stackbench(
        "report", str(run_dir), "--against", "fastapi_sqla", "--output", str(tmp_path / "r"),
        owner=uuid.uuid4().hex,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    markdown = (tmp_path / "r" / "report.md").read_text()
    priced = markdown[markdown.index("Against `fastapi_sqla`") :]
    row = re.findall(r"^\| fastapi_timed @ uvicorn \| .*$", priced, re.M)[0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    own, base = (
        by_app[a]["summary"]["cpu_us_per_request"]["server"]
        for a in ("fastapi_timed", "fastapi_sqla")
    )
    assert cells[3:6] == [f"{own:,.0f}", f"{base:,.0f}", f"{own - base:+,.0f}"]


@pytest.mark.skipif(callgrind.missing() is not None, reason=str(callgrind.missing()))
def test_the_middleware_in_instructions_per_request(tmp_path: Path) -> None:
    """The same copy as a variant of the features experiment's --instructions: counted,
    it runs more instructions per /json request than the original."""
    copy = middleware_copy(tmp_path)
    outcome = features.run_instructions(
        pairs=[Pair("fastapi_sqla", "uvicorn")],
        variants=[str(copy)],
        options=BenchOptions(scenarios=("json",), workers=1, output=tmp_path / "out"),
        rounds=1,
        requests=100,
        warmup=50,
        experiment="fastapi-features",
    )
    assert outcome.failures == []
    counted = outcome.counted[("fastapi_sqla", "uvicorn", "json")]
    (base,), (timed,) = counted[BASELINE], counted["fastapi_timed"]
    assert base and timed and timed > base, (base, timed)
    markdown = features.instruction_markdown(outcome, "x")
    assert f"- fastapi_timed: the app in `{copy}`, served in its place" in markdown
    (row,) = [line for line in markdown.splitlines() if "| fastapi_timed |" in line]
    assert row.split("|")[-2].strip().startswith("+")  # what the middleware adds
