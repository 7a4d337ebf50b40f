"""Wire models, defined once and shared by the client and the server."""
