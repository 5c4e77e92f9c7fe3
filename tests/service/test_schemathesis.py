"""schemathesis against the service's own OpenAPI document (issue 18's standing suite).

Every operation in ``/openapi.json`` is called with cases generated from its
schema, valid and invalid (schemathesis' positive and negative modes), and
every response goes through all of schemathesis' checks: no 5xx, the status
is documented, the body matches the documented schema, the content type and
headers are documented, invalid input is refused, a route that needs a token
refuses a request without one, and so on. A state machine then chains
operations through the links schemathesis infers between them (an id one
answer returns fed to the operation that takes it).

The app is the real one (service.app.create_app) on a database cloned from
the migrated template, called in process over ASGI (schemathesis runs its
lifespan, so the app opens its own pool, as ``xpbase serve`` does). Calls
carry a signed-in admin's token (admins reach every route members reach and
the admin routes besides); ``DELETE /v1/me`` gets a new member each time,
since it erases whoever calls it. The OAuth providers and Razorpay are the
suite's local stand-ins on 127.0.0.1.

Examples per operation: ``XPBASE_FUZZ_EXAMPLES`` (default 6, which keeps this
file near a minute on two cores); e.g. ``XPBASE_FUZZ_EXAMPLES=200`` for a deep
run. Stateful scenarios: ``XPBASE_FUZZ_SCENARIOS`` (default 10). ``XPBASE_FUZZ_REPORT=FILE`` writes
the calls made per operation to ``FILE.<xdist worker>`` (JSON).

The cases are the same on every run (hypothesis' ``derandomize``), so CI is
repeatable: a new failure comes from a change, not from the draw. A deep run
draws new cases each time with ``XPBASE_FUZZ_RANDOM=1`` (CI once drew an
``expected_price`` of 10**13 that the next run would not have).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pytest_postgresql.executors.noop import NoopExecutor
from quart import Quart
from schemathesis.python import asgi

from service.app import create_app
from tests.conftest import cloned_database
from tests.helpers import award, new_profile
from tests.service.conftest import JWT_SECRET, make_token, oauth_settings
from tests.service.razorpay_standin import RazorpayStandIn
from tests.service.standins import StandIns
from tests.sql.engine import as_service
from xpbase.db import Database
from xpbase.settings import Settings

EXAMPLES = int(os.environ.get("XPBASE_FUZZ_EXAMPLES", "6"))
SCENARIOS = int(os.environ.get("XPBASE_FUZZ_SCENARIOS", "10"))
DERANDOMIZE = os.environ.get("XPBASE_FUZZ_RANDOM") != "1"


@dataclass
class Service:
    """The app under test, the database behind it, who calls it and how often each operation was called."""

    app: Quart
    database_url: str
    admin: UUID
    calls: Counter[str] = field(default_factory=Counter)

    def headers(self, case: schemathesis.Case) -> dict[str, str]:
        """The caller's token: the admin, or a new member for ``DELETE /v1/me`` (it erases its caller)."""
        subject = self.admin
        if case.operation.method.upper() == "DELETE" and case.operation.path == "/v1/me":
            subject = asyncio.run(_with_db(self.database_url, lambda db: new_profile(db, "Leaver")))
        return {"Authorization": f"Bearer {make_token(sub=str(subject))}"}


async def _with_db(url: str, work: Any) -> Any:
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        return await work(db)
    finally:
        await db.close()


async def _seed(db: Database) -> UUID:
    """An admin and two members with XP on both layers, so boards, ledgers and timelines are not empty."""
    admin = await new_profile(db, "Admin")
    await as_service(db, "update public.profiles set role = 'admin' where id = $1", admin)
    for n, pid in enumerate([admin, await new_profile(db, "Ada"), await new_profile(db, "Grace")]):
        for activity in ("message", "event_attendance", "challenge_completed"):
            await award(db, pid, activity, f"seed-{n}-{activity}")
    return admin


@pytest.fixture(scope="module")
def service(
    xpbase_template: NoopExecutor, standins: StandIns, razorpay: RazorpayStandIn
) -> Iterator[Service]:
    """The app on its own database for the whole module (schemathesis runs its lifespan over ASGI)."""
    with cloned_database(xpbase_template, prefix="xpbase_fuzz") as url, tempfile.TemporaryDirectory() as dd:
        admin = asyncio.run(_with_db(url, _seed))
        extra = {**oauth_settings(standins), **razorpay.settings()}
        settings_ = Settings(jwt_secret=JWT_SECRET, database_url=url, data_dir=Path(dd), **extra)
        state = Service(create_app(settings_), url, admin)
        FORWARDER.app = state.app
        try:
            yield state
        finally:
            asgi.shutdown_lifespans()  # closes the app's pool before the database is dropped
            FORWARDER.app = None
        if report := os.environ.get("XPBASE_FUZZ_REPORT"):  # one file per pytest-xdist process
            path = Path(f"{report}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
            path.write_text(json.dumps(dict(sorted(state.calls.items())), indent=1) + "\n")


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app serves it, built at import (it needs no database) so that
    schemathesis can make one test per operation; test_the_document_is_the_served_one checks it."""

    async def fetch() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as folder:
            settings_ = Settings(
                jwt_secret=JWT_SECRET, database_url="postgresql://-@/-", data_dir=Path(folder)
            )
            response = await create_app(settings_).test_client().get("/openapi.json")
            document: dict[str, Any] = await response.get_json()
            return document

    return asyncio.run(fetch())


class Forwarder:
    """The ASGI app schemathesis is given at import: it passes every call (and the lifespan) to the app
    the ``service`` fixture builds, whose database exists only then. schemathesis copies the app into
    each operation when it makes the tests, and its checks replay requests (without the token) there."""

    app: Quart | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "the service fixture sets the app"
        await self.app(scope, receive, send)


FORWARDER = Forwarder()
DOCUMENT = _document()
# Every check runs, with schemathesis' defaults but one: positive_data_acceptance (a request the
# document allows must not be refused) also accepts 400 here, because the database decides rules a JSON
# schema cannot state, and answers them 400 with a code of their own: a cursor must be one this API
# handed out (`invalid_argument`), a layer or season must exist, a rejection needs a reason, quiet hours
# need both ends, an event must end after it starts, an order names a package or an item, a signature
# must match (`invalid_signature`), an e-mail address must be deliverable (`invalid_email`), a CSV
# export must have rows. A 400 that is only the document's mistake (a required parameter it called
# optional, a null it allowed) is fixed in the document instead; 5xx, undocumented statuses and
# answers that do not match their schema are never accepted.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
            }
        }
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = FORWARDER


def test_the_document_is_the_served_one(service: Service) -> None:
    with asgi.get_client(FORWARDER) as client:
        assert client.get("/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=DERANDOMIZE,
)
def test_every_operation(case: schemathesis.Case, service: Service) -> None:
    service.calls[f"{case.operation.method.upper()} {case.operation.path}"] += 1
    case.call_and_validate(headers=service.headers(case))


def test_stateful(service: Service) -> None:
    """Chains of calls along the links schemathesis infers (ids from one answer into the next call)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": service.headers(case)}

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=DERANDOMIZE,
            stateful_step_count=10,
        )
    )
