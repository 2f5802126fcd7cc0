"""HTTP edge: routes, thin handlers, middleware (request id, auth, errors, one log line)."""
