"""Asset group names, one per layer of the seed's architecture."""

INGESTION = "ingestion"
STORAGE = "storage"
ANALYTICS = "analytics"
