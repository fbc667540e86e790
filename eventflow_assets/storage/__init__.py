"""Storage layer: PostgreSQL connections and the versioned schema."""
