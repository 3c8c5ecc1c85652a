"""``--csv FILE``: one row per measured request, written once a second by the fold."""

from __future__ import annotations

import csv
import os
import shutil
import time
from typing import IO, Any

from .protocol import Conn

_pc = time.perf_counter_ns

CSV_HEADER = (
    "start_us",
    "name",
    "status",
    "error",
    "latency_us",
    "corrected_us",
    "connect_us",
    "wait_us",
    "read_us",
    "body_bytes",
)


class CsvOut:
    """The rows of one worker: kept in ``rows`` by :meth:`row`, written by
    :meth:`flush`.  With ``--processes N`` worker i writes ``FILE.part{i}`` (no header)
    and :func:`concat_parts` joins them."""

    __slots__ = ("_file", "_writer", "m_start", "open_model", "rows")

    def __init__(self, path: str, index: int, count: int, open_model: bool) -> None:
        if count > 1:
            path = f"{path}.part{index}"
        self._file: IO[str] = open(path, "w", newline="")  # noqa: SIM115 - close()
        self._writer: Any = csv.writer(self._file)
        if count == 1:
            self._writer.writerow(CSV_HEADER)
        self.rows: list[tuple[Any, ...]] = []
        self.open_model = open_model
        self.m_start = 0  # measurement start (perf_counter_ns), set when the run starts

    def row(self, conn: Conn, name: str, status: int, error: str) -> None:
        now = _pc() if error else conn.now
        ok = not error
        self.rows.append(
            (
                round((conn.t_start - self.m_start) / 1000),
                name,
                status,
                error,
                round((now - conn.t_start) / 1000),
                round((now - conn.t_sched) / 1000) if self.open_model else "",
                round(conn.connect_ns / 1000),
                round((conn.t_first - conn.t_written) / 1000) if ok else "",
                round((now - conn.t_first) / 1000) if ok else "",
                conn.nbody,
            )
        )

    def flush(self) -> None:
        if self.rows:
            self._writer.writerows(self.rows)
            self.rows.clear()

    def close(self) -> None:
        self._file.close()


def concat_parts(path: str, n: int) -> None:
    """Join the workers' ``FILE.part{i}`` into ``FILE`` with one header."""
    with open(path, "w", newline="") as out:
        out.write(",".join(CSV_HEADER) + "\r\n")
        for i in range(n):
            part = f"{path}.part{i}"
            if os.path.exists(part):
                with open(part, newline="") as f:
                    shutil.copyfileobj(f, out)
                os.unlink(part)
