"""Evaluation commands of the profile service (offline and live figures), apart from
the runtime code."""
