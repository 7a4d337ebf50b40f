"""Database access: tables, engine and sessions, dialect differences, migrations."""
