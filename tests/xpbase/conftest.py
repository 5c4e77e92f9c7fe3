"""Fixtures for xpbase's own modules: the PostgREST stand-in on the per-test database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.postgrest_standin import PostgrestStandIn, started
from xpbase.rpc import PostgrestRPC


@pytest.fixture
async def postgrest(database_url: str) -> AsyncIterator[PostgrestStandIn]:
    standin, _key = await started(database_url)
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
async def postgrest_rpc(postgrest: PostgrestStandIn) -> AsyncIterator[PostgrestRPC]:
    """xpbase.rpc's PostgREST transport (supabase-py) pointed at the stand-in with the service_role key."""
    rpc = await PostgrestRPC.connect(postgrest.url, postgrest.apikey)
    try:
        yield rpc
    finally:
        await rpc.close()
