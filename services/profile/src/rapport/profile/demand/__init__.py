"""Demand: live series by product, category, region, channel and segment, spike and
shift detection, short-term forecasts and the audience for a spike."""
