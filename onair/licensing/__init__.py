"""Licensing: territories, licence windows, programming rules and clean shows (issue 7)."""
