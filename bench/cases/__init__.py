"""The benchmark cases, one module each, in the order they run."""

CASES = ["nested", "small", "fanout", "live", "search", "importer", "peer", "traffic"]
