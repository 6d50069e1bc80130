import os
from collections.abc import Iterator

import pytest

from rapport.shared.localstack import Stack


@pytest.fixture(scope="package")
def system(stack: Stack) -> Iterator[Stack]:
    """The four services as real processes on the test profile's ports (scoring's own
    refit schedule held off: tests fit when they mean to, and check the version).

    Stopped once the end-to-end tests are done, so their demand closer cannot publish
    spikes of this traffic while later tests read the shared alerts topic."""
    os.environ.setdefault("RAPPORT_REFIT_FIRST_DELAY_S", "86400")
    stack.start_services()
    try:
        stack.wait_services()
        yield stack
    finally:
        stack.stop_services()
