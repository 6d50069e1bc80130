import os
from collections.abc import Iterator

import pytest

from rapport.shared.localstack import Stack

UPLIFT_WINDOW_S = 5.0
"""The uplift world sends each purchase right after its decision; the grace (20 s) covers
the pipeline's lag while earlier end-to-end tests' data is still being folded."""


@pytest.fixture(scope="package")
def system(stack: Stack) -> Iterator[Stack]:
    """The four services as real processes on the test profile's ports (scoring's own
    refit schedule held off: tests fit when they mean to, and check the version).

    Stopped once the end-to-end tests are done, so their demand closer cannot publish
    spikes of this traffic while later tests read the shared alerts topic."""
    os.environ.setdefault("RAPPORT_REFIT_FIRST_DELAY_S", "86400")
    # attribution windows of seconds, so the uplift world's rounds close while it runs
    os.environ.setdefault("RAPPORT_ATTRIBUTION_WINDOW_S", str(UPLIFT_WINDOW_S))
    os.environ.setdefault("RAPPORT_ATTRIBUTION_GRACE_S", "20")
    os.environ.setdefault("RAPPORT_ATTRIBUTION_CLOSE_INTERVAL_S", "0.5")
    stack.start_services()
    try:
        stack.wait_services()
        yield stack
    finally:
        stack.stop_services()
