"""One thin router per resource: parse the request, call the store, serialize the answer."""

#: Where every API route lives; each router's prefix starts with it.
API_PREFIX = "/api"
