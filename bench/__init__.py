"""Benchmark of the CRM sync against the local emulator: `python -m bench.run --help`."""
