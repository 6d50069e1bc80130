from collections.abc import Iterator

import pytest

from rapport.shared.localstack import Stack


@pytest.fixture(scope="session")
def system(stack: Stack) -> Iterator[Stack]:
    """The four services as real processes on the test profile's ports."""
    stack.start_services()
    try:
        stack.wait_services()
        yield stack
    finally:
        stack.stop_services()
