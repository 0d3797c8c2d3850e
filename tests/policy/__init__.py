"""Policy pack tests: the pack runs as a subprocess and is driven over the Analyzer gRPC protocol."""
