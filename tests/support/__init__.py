"""Servers, factories and data the tests share, importable by bench/ as `tests.support`
(run a bench as `python -m bench.<name>` from the repository root)."""
