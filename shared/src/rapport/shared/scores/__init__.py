"""Scores read at every request: pure math over a customer's purchase summary."""
