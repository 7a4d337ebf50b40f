"""The flowplane server: REST API, websockets, background services and the database."""
