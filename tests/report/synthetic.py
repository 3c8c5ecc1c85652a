"""Synthetic run directories for report tests: chosen numbers, schema-valid files.

Every document goes through ``results.write_json``, so it validates against the result
and manifest schemas exactly as a real run's files do. The loadgen report of each repeat
is the small part of a real one the charts read (percentiles, per-second series).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackbench import results
from stackbench.documents import SCHEMA_VERSION

SCENARIO = "db"


def machine(cpu_model: str, cpu_count: int) -> dict[str, Any]:
    return {"cpu_model": cpu_model, "cpu_count": cpu_count, "memory_gb": 8.0, "platform": "Linux"}


def _loadgen(rps: float, p99_ms: float, duration: float) -> dict[str, Any]:
    ns = 1_000_000
    percentiles = {"50": p99_ms / 4, "90": p99_ms / 2, "99": p99_ms, "99.9": p99_ms * 1.5}
    return {
        "version": 1,
        "summary": {
            "rps": rps,
            "ok": int(rps * duration),
            "failed": 0,
            "errors": 0,
            "elapsed_s": duration,
        },
        "latency": {
            "headline": "uncorrected",
            "uncorrected": {
                "count": int(rps * duration),
                "max_ns": int(p99_ms * 2 * ns),
                "percentiles_ns": {k: int(v * ns) for k, v in percentiles.items()},
            },
        },
        "series": [
            {"t": t, "completed": int(rps), "p99_ns": int(p99_ms * ns)}
            for t in range(int(duration))
        ],
    }


def result(
    run_id: str,
    app: str,
    server: str,
    rps: float | None,
    *,
    p99_ms: float = 10.0,
    scenario: str = SCENARIO,
    status: str = "ok",
    cpu_us: dict[str, float | None] | None = None,
    database_source: str | None = "proc",
    worker_exits: int = 0,
    legacy: bool = False,
    cpu_resolution_s: float | None = 1e-9,
) -> dict[str, Any]:
    """One result document; ``rps=None`` is a failed result (no summary, no repeats).
    ``legacy`` leaves out the fields older result files lack (CPU split, worker exits);
    ``cpu_resolution_s=None``, how CPU was read (results from before it was said)."""
    duration = 3.0
    repeats = [] if rps is None else [_repeat(rps * f, p99_ms, duration) for f in (0.98, 1.02)]
    summary: dict[str, Any] | None = None
    if rps is not None:
        summary = {
            "responses": int(rps * duration * 2),
            "rps": rps,
            "rps_min": round(rps * 0.98, 1),
            "rps_max": round(rps * 1.02, 1),
            "spread": 0.04,
            "p50_ms": p99_ms / 4,
            "p90_ms": p99_ms / 2,
            "p99_ms": p99_ms,
            "p999_ms": p99_ms * 1.5,
            "max_ms": p99_ms * 2,
            "error_rate": 0.0,
            "errors": {},
            "server_cpu_s": 1.5,
            "requests_per_server_cpu_s": round(rps * duration / 1.5, 1),
            "peak_rss_mb": 80.0,
            "peak_db_connections": 10,
            "client_cpu_per_wall_s": 0.4,
        }
        if not legacy:
            split = cpu_us or {"server": 250.0, "database": 90.0, "client": 40.0}
            summary.update(
                database_cpu_s=None if split["database"] is None else 0.5,
                database_cpu_source=database_source,
                client_cpu_s=1.2,
                cpu_us_per_request=split,
                worker_exits=worker_exits,
            )
            if cpu_resolution_s is not None:
                read = {"source": "cpu-clock", "resolution_s": cpu_resolution_s}
                summary.update(server_cpu_read=read, database_cpu_read=read)
    flags: dict[str, Any] = {"noisy": False, "client_saturated": False, "checks_failed": False}
    if not legacy:
        flags["worker_restarted"] = worker_exits > 0
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "stackbench.result",
        "run_id": run_id,
        "app": app,
        "server": server,
        "interface": "asgi",
        "scenario": scenario,
        "status": status,
        "reason": None if status == "ok" else "server exited with code 1 during the run",
        "log_tail": None,
        "server_command": [server, "main:app"],
        "server_settings": {"workers": 2, "threads": 10, "pool_size": 10},
        "load": {
            "model": "closed",
            "duration_s": duration,
            "warmup_s": 1.0,
            "connections": 32,
            "rate": None,
            "repeats": 2,
            "processes": 1,
        },
        "summary": summary,
        "flags": flags,
        "repeats": repeats,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:00:10+00:00",
    }


def _repeat(rps: float, p99_ms: float, duration: float) -> dict[str, Any]:
    return {
        "rps": rps,
        "p99_ms": p99_ms,
        "server": {
            "cpu_s": 1.5,
            "peak_rss_mb": 80.0,
            "peak_db_connections": 10,
            "alive_after": True,
        },
        "loadgen": _loadgen(rps, p99_ms, duration),
    }


def write_run(
    base: Path,
    run_id: str,
    documents: list[dict[str, Any]],
    cpu: tuple[str, int] = ("CPU", 2),
    packages: dict[str, str] | None = None,
) -> Path:
    """A run directory: the documents (their run_id set to this run's) and a manifest."""
    run_dir = base / run_id
    run_dir.mkdir(parents=True)
    names = []
    for document in documents:
        document = {**document, "run_id": run_id}
        name = f"{document['app']}--{document['server']}--{document['scenario']}.json"
        results.write_json(run_dir / name, document, "result")
        names.append(name)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": "stackbench.manifest",
        "run_id": run_id,
        "status": "ok",
        "reason": None,
        "experiment": None,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:01:00+00:00",
        "command": ["python", "-m", "stackbench", "bench", "--pairs"],
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "python": {"version": "3.11.7", "implementation": "CPython", "executable": "python"},
        "packages": packages or {},
        "machine": machine(*cpu),
        "pinning": {"server_cpus": None, "client_cpus": None},
        "database": {"embedded": True, "url": "postgresql://x", "settings": {}},
        "seed": {"scale": 1, "checksum": "abc", "reseeded": False},
        "loadgen": {},
        "options": {},
        "pairs": [{"app": d["app"], "server": d["server"]} for d in documents],
        "results": names,
    }
    results.write_json(run_dir / "manifest.json", manifest, "manifest")
    return run_dir
