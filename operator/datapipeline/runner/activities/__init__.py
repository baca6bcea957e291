"""Activity handlers: one module per AWS activity type."""
