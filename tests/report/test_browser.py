"""The HTML page of a real run, opened in a real headless browser (Debian's chromium).

The page must render with no network at all: every host name resolves to nothing, and
the page's own Content-Security-Policy forbids any fetch but inline images. A copy of
the page gets a tiny script that reports what rendered (tables, images decoded with a
non-zero natural width) into the DOM, which chromium dumps; a screenshot must not be
blank. Skips, saying why, when no chromium is installed.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from stackbench.report import make_report

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PROBE = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const rendered = images.filter((i) => i.complete && i.naturalWidth > 0);
  const marker = document.createElement("div");
  marker.id = "render-check";
  marker.textContent = `tables=${document.querySelectorAll("table").length} ` +
    `rows=${document.querySelectorAll("tbody tr").length} images=${images.length} ` +
    `rendered=${rendered.length} widths=${rendered.map((i) => i.naturalWidth).join(",")}`;
  document.body.appendChild(marker);
});
</script>
"""


def _browser() -> str:
    override = os.environ.get("STACKBENCH_CHROMIUM")
    for name in ([override] if override else []) + list(BROWSERS):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no headless browser: install Debian's chromium (apt-get install -y chromium) "
        "or set STACKBENCH_CHROMIUM"
    )


def _chromium(browser: str, *args: str, timeout: float = 90.0) -> str:
    """Run chromium headless, offline and isolated; kill its whole group on timeout."""
    with tempfile.TemporaryDirectory(prefix="stackbench-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # running as root in CI containers
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network, by construction
            f"--user-data-dir={profile}",
            *args,
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"chromium did not finish within {timeout:.0f} s")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 0, stderr[-2000:]
        return stdout


def test_the_html_page_renders_its_tables_and_charts(bench_run: Path, tmp_path: Path) -> None:
    browser = _browser()
    outcome = make_report([bench_run], output=tmp_path / "report")
    page = outcome.html.read_text()
    # The page's policy forbids scripts; the probe's copy lets its own inline script run.
    allow = "default-src 'none'; script-src 'unsafe-inline';"
    probed = tmp_path / "probed.html"
    probed.write_text(
        page.replace("default-src 'none';", allow).replace("</body>", PROBE + "</body>")
    )
    dom = _chromium(browser, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(
        r'id="render-check">tables=(\d+) rows=(\d+) images=(\d+) rendered=(\d+) widths=([\d,]*)<',
        dom,
    )
    assert match, "the probe did not run: " + dom[-500:]
    tables, rows, images, rendered, widths = match.groups()
    assert int(tables) == page.count("<table>") >= 3
    assert int(rows) >= 4
    # One pair, two scenarios: per scenario the latency and the over-time charts; no
    # throughput chart of one bar (the figure is in the tables).
    assert int(images) == len(outcome.images) == 4
    assert not any(image.name.startswith("throughput-") for image in outcome.images)
    assert int(rendered) == int(images), f"only {rendered} of {images} images decoded"
    assert all(int(w) >= 800 for w in widths.split(","))

    screenshot = tmp_path / "page.png"
    _chromium(
        browser,
        f"--screenshot={screenshot}",
        "--window-size=1280,2400",
        "--hide-scrollbars",
        outcome.html.as_uri(),  # the page itself, unmodified
    )
    from matplotlib.image import imread

    pixels = imread(screenshot)
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    assert pixels.std() > 0.05, "the screenshot is blank"
    # Not only text: the charts' colours are there (a blue bar: more blue than red).
    blue = (pixels[..., 2] > pixels[..., 0] + 0.2).mean()
    assert blue > 0.002, f"no chart colour in the screenshot ({blue:.4f})"


LAYOUT_PROBE = """
<script>
window.addEventListener("load", () => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const summary = document.querySelector("table");
  const heads = [...summary.querySelectorAll("th")].map((th) => th.textContent);
  const cpu = heads.indexOf("CPU µs/req");
  const cells = [...summary.querySelectorAll("tbody tr")].map((tr) => tr.children[cpu]);
  const links = [...document.querySelectorAll("nav.contents a")];
  const report = {
    firstHeading: document.querySelector("h2").textContent,
    cpuHeader: cpu < 0 ? null : box(summary.querySelectorAll("th")[cpu]),
    cpuCells: cells.map((td) => ({text: td.textContent, box: box(td)})),
    contentsTop: box(document.querySelector("nav.contents")).top,
    links: links.length,
    linked: links.filter((a) => document.getElementById(a.hash.slice(1))).length,
    h2: document.querySelectorAll("h2").length,
    sideways: [...document.querySelectorAll(".scroll")]
      .filter((d) => d.scrollWidth > d.clientWidth + 1)
      .map((d) => d.querySelector("th").textContent + " … " + d.scrollWidth),
    pageWidth: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
  };
  const marker = document.createElement("pre");
  marker.id = "layout-check";
  marker.textContent = JSON.stringify(report);
  document.body.appendChild(marker);
});
</script>
"""


def test_the_page_opens_with_its_summary_and_contents_at_1280_px(
    bench_run: Path, tmp_path: Path
) -> None:
    """At 1,280 x 800 (a laptop), the first screen holds the verdict, the headline table
    with CPU per request, and the contents; nothing on the page scrolls sideways."""
    browser = _browser()
    outcome = make_report([bench_run], output=tmp_path / "report")
    page = outcome.html.read_text()
    allow = "default-src 'none'; script-src 'unsafe-inline';"
    probed = tmp_path / "probed.html"
    probed.write_text(
        page.replace("default-src 'none';", allow).replace("</body>", LAYOUT_PROBE + "</body>")
    )
    dom = _chromium(
        browser,
        "--window-size=1280,800",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probed.as_uri(),
    )
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: " + dom[-500:]
    report = json.loads(html.unescape(found.group(1)))
    assert report["firstHeading"] == "Summary"
    header = report["cpuHeader"]
    assert header is not None, "no CPU µs/req column in the first table"
    cells = report["cpuCells"]
    assert len(cells) == 2  # one pair, two scenarios
    for cell in [{"text": "header", "box": header}, *cells]:
        assert cell["box"]["left"] >= 0 and cell["box"]["right"] <= 1280, cell
        assert cell["box"]["bottom"] <= 800, f"below the first screen: {cell}"
        assert cell["text"] == "header" or re.fullmatch(r"[\d,]+", cell["text"]), cell
    assert report["contentsTop"] < 800, "the contents are not on the first screen"
    assert report["links"] == report["linked"] == report["h2"] - 1  # every section but Summary
    assert report["sideways"] == [], f"tables scroll sideways: {report['sideways']}"
    assert report["pageWidth"] <= 1280

    screenshot = tmp_path / "first-screen.png"
    _chromium(
        browser,
        f"--screenshot={screenshot}",
        "--window-size=1280,800",
        "--hide-scrollbars",
        outcome.html.as_uri(),
    )
    from matplotlib.image import imread

    assert imread(screenshot).shape[:2] == (800, 1280)
    if keep := os.environ.get("STACKBENCH_SCREENSHOTS"):  # to look at it: a directory
        shutil.copy(screenshot, Path(keep) / "report-first-screen-1280.png")
