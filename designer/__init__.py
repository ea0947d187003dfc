"""designer layer (see docs/architecture.md)."""
