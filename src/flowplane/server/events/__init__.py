"""Events inside the server: the in-process bus, event storage and matching."""
