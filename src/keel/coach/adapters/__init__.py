"""coach's adapters: one module per external system, each behind a Protocol."""
