"""Pachyderm pipeline specs: canonical form, validation, 1.x conversion and templates."""
