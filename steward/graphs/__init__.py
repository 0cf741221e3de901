"""Steward's graphs (built in a later part; see DESIGN.md)."""
