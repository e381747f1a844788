"""HTTP building blocks of the parts' APIs: the app factory, dependencies, paging,
JSON responses, metrics, bounded API types, the HTTP edge, the server and OpenAPI errors."""
