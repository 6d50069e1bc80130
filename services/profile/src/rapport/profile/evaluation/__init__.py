"""Evaluation of the demand detector apart from its runtime: NAB scoring over arrays,
the grid of candidate configurations, leave-one-category-out and knob sensitivity."""
