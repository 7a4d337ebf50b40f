"""Async query functions per resource; each takes a session and returns ORM rows or values."""
