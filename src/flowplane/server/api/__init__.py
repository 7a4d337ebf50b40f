"""One thin router per resource: parse the request, call the store, serialize the answer."""
