"""loadgen measured against wrk and hey: ``python -m benchmarks.loadgen.compare`` writes
BENCHMARKS.md and BENCHMARKS.json beside this file."""
