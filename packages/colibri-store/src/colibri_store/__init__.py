"""colibri-store (placeholder while the store is written)."""
