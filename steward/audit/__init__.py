"""Steward's audit (built in a later part; see DESIGN.md)."""
