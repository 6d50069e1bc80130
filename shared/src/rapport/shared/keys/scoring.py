"""Scoring's keys (written by the scoring service; read through
:mod:`rapport.shared.customers`): the fitted models and the population sketches."""

from __future__ import annotations

from . import MODELS, tagged


def clv_model(version: str) -> str:
    """JSON of one fitted lifetime-value model (kept: ops can see past fits)."""
    return f"{tagged(MODELS)}:models:clv:{version}"


def clv_current() -> str:
    """The version of the lifetime-value model in use."""
    return f"{tagged(MODELS)}:models:clv-current"


def clv_version_counter() -> str:
    return f"{tagged(MODELS)}:models:clv-counter"


def clv_versions() -> str:
    """Sorted set of the fitted versions by fit time (newest last)."""
    return f"{tagged(MODELS)}:models:clv-versions"


def clv_fit_lock() -> str:
    """Held while one scoring process fits, so replicas do not fit at once."""
    return f"{tagged(MODELS)}:models:clv-fit-lock"


def population_sketches(partition: int) -> str:
    """Hash ``metric|added`` / ``metric|retracted`` -> KLL sketch of the values of one
    profile-updates partition's customers (see rapport.shared.scores.population)."""
    return f"{tagged(population_slot(partition))}:population:sketches:{partition}"


def population_points(partition: int) -> str:
    """Hash customer fingerprint -> the customer's point in the sketches (so it can be
    retracted when it changes, or when they are erased or merged away)."""
    return f"{tagged(population_slot(partition))}:population:points:{partition}"


def population_slot(partition: int) -> str:
    """A profile-updates partition's population sketches, points and offset."""
    return f"pop{partition}"
