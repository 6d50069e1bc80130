"""A simulated world to judge next-best-action in (evaluation code, not used by the
service at run time): customers of hidden kinds who reveal themselves only through
their touchpoints, and who accept offers with hidden, kind- and channel-dependent
probabilities. ``world`` is pure and seeded; ``run`` drives the real services
through their HTTP APIs and measures the profit per decision against the best
static policy and the oracle."""
