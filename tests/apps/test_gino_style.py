"""gino_style beyond the conformance suite: issue 26's hostile-client findings."""

from __future__ import annotations

import pytest
from fastapi_edges import HostileClientChecks  # tests/apps is on sys.path (no __init__.py)


class TestGinoStyle(HostileClientChecks):
    APP = "gino_style"

    @pytest.fixture(scope="class")
    @classmethod
    def db_url(cls, db) -> str:
        return db.url
