"""Benchmarks of the repository's own tools, run by hand; not part of any package that
ships (loadgen measured against wrk and hey: ``benchmarks/loadgen/``)."""
