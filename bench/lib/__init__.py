"""The benchmark runner's modules (bench/run is the entry point)."""
