"""Benchmarks that print figures and ratios; run each from the repository root as a module,
`python -m bench.<name>` (run as a script, bench/ would come first on sys.path, where
bench/logging.py shadows the standard library's `logging`)."""
