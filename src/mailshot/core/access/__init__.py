"""API keys: tokens, their tables, authentication of a request, the key lifecycle
service, its routes and the record of refused requests."""
