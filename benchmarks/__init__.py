"""Speed measurements: python -m benchmarks.<name>."""
