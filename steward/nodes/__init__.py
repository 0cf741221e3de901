"""Steward's nodes (built in a later part; see DESIGN.md)."""
