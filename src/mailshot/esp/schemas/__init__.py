"""ESP API schemas (Pydantic)."""
