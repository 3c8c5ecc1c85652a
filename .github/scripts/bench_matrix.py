"""The bench workflow's job matrix from ``nox -s matrix -- --json`` (stackbench.matrix).

    python -m nox -s matrix -- --json | python .github/scripts/bench_matrix.py >> "$GITHUB_OUTPUT"

prints ``matrix=<JSON>`` (``{"include": [{"app", "server", "session"}, ...]}``) and
``count=<number of pairs>``: step outputs for ``strategy.matrix: fromJSON(...)``.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(text: str) -> int:
    listing = json.loads(text)
    include = [
        {"app": pair["app"], "server": pair["server"], "session": pair["session"]}
        for pair in listing["pairs"]
    ]
    print("matrix=" + json.dumps({"include": include}, separators=(",", ":")))
    print(f"count={len(include)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit("usage: bench_matrix.py [PAIRS_JSON]  (default: stdin, from nox -s matrix)")
    sys.exit(main(Path(sys.argv[1]).read_text() if len(sys.argv) == 2 else sys.stdin.read()))
