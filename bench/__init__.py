"""Benchmarks: each measures against a baseline run side by side and writes JSON under
bench/results/ (bench/README.md). Run one as `uv run python -m bench.<name>` from the
repository root."""
