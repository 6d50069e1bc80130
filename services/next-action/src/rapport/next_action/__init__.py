"""next_action."""
