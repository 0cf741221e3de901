"""Steward's guardrails (built in a later part; see DESIGN.md)."""
