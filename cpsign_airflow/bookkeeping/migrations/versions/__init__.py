"""Revisions of the bookkeeping schema, oldest first by down_revision."""
