"""permissions layer (see docs/architecture.md)."""
