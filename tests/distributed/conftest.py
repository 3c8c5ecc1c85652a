"""Hosts for these tests are Linux network namespaces (tests/distributed/netns.py).

A test that needs them requests ``namespaces``: it skips, with the reason
``namespace_support()`` gives, only where namespaces cannot be created here (not root,
no ``ip`` binary, the sandbox refuses ``ip netns add``), never for any other reason.
"""

from __future__ import annotations

import pytest

from tests.distributed.netns import namespace_support


@pytest.fixture(scope="session")
def namespace_support_reason() -> str | None:
    """Probed once per session: it really creates and deletes a namespace."""
    return namespace_support()


@pytest.fixture()
def namespaces(namespace_support_reason: str | None) -> None:
    if namespace_support_reason is not None:
        pytest.skip(namespace_support_reason)
