"""The bench workflow's job matrix from ``nox -s matrix -- --json`` (stackbench.matrix).

    python -m nox -s matrix -- --json | python .github/scripts/bench_matrix.py >> "$GITHUB_OUTPUT"

prints ``matrix=<JSON>`` (``{"include": [{"name", "pairs"}, ...]}``) and ``count=<number
of jobs>``: step outputs for ``strategy.matrix: fromJSON(...)``.

Runners differ, so numbers from two jobs do not compare (docs/ci.md). One job per app
runs all of that app's servers side by side in one run directory, so the table of that
app compares servers measured on one machine. Every job also measures the reference pair
(``stackbench.matrix.REFERENCE_PAIR``), so the report can rank rows of different jobs as
ratios to the reference measured in their own job. A server that pins a distribution
exactly (gunicorn-eventlet: ``gunicorn==25.3.0``) gets a job of its own, because in a
shared venv its pin would change what the app's other servers run.

``pairs`` is ``app@server,app@server,...``, the reference first. Standard library only,
plus the registries' plain modules from this checkout (``stackbench.matrix`` and what it
imports; never the report, which needs matplotlib): it runs before anything is installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# stdlib-only registries
from stackbench.matrix import REFERENCE_APP, REFERENCE_SERVER  # noqa: E402
from stackbench.servers import SERVERS  # noqa: E402

REFERENCE = (REFERENCE_APP, REFERENCE_SERVER)


def pinned(server: str) -> bool:
    """True for a server whose requirements pin a distribution to one version."""
    return any("==" in requirement for requirement in SERVERS[server].requirements)


def jobs(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """One job per app (its unpinned servers), one per pinned pair; each with the reference."""
    if REFERENCE not in pairs:
        raise SystemExit(
            f"the reference pair {REFERENCE[0]} @ {REFERENCE[1]} is not in the matrix: "
            "without it no two jobs' numbers can be compared (stackbench.matrix.REFERENCE_PAIR)"
        )
    groups: dict[str, list[tuple[str, str]]] = {}
    for app, server in pairs:
        name = f"{app}-{server}" if pinned(server) else app
        groups.setdefault(name, []).append((app, server))
    return [
        {
            "name": name,
            "pairs": ",".join(
                f"{app}@{server}" for app, server in dict.fromkeys([REFERENCE, *members])
            ),
        }
        for name, members in groups.items()
    ]


def main(text: str) -> int:
    listing = json.loads(text)
    include = jobs([(pair["app"], pair["server"]) for pair in listing["pairs"]])
    print("matrix=" + json.dumps({"include": include}, separators=(",", ":")))
    print(f"count={len(include)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: bench_matrix.py [PAIRS_JSON]  (default: stdin, from nox -s matrix)")
    sys.exit(main(Path(sys.argv[1]).read_text() if len(sys.argv) == 2 else sys.stdin.read()))
