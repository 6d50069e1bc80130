"""Evaluation commands of the profile service apart from its runtime: NAB scoring over
arrays, the grid of detector configurations, leave-one-category-out and knob
sensitivity; the forecasts scored rolling-origin, offline and live."""
