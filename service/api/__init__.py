"""The HTTP edge: dependencies, middleware, request/response schemas, routes and the review page. The only code that knows HTTP."""
