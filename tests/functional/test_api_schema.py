"""The OpenAPI document: valid, complete, and kept by every response.

Schemathesis generates requests from the document (a bounded number per
operation) and sends them to the real app on 127.0.0.1 as an admin operator.
No response may be a 5xx or break the schema the document gives for it.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from common.api_client import Api, serve_api
from keysteward.db import Store

EXPECTED_PATHS = {
    "/api/v1/assignments",
    "/api/v1/audit-runs",
    "/api/v1/audit-runs/{run_id}",
    "/api/v1/checks",
    "/api/v1/credentials",
    "/api/v1/credentials/{credential_id}",
    "/api/v1/discovery/hits",
    "/api/v1/events",
    "/api/v1/findings",
    "/api/v1/me",
    "/api/v1/people",
    "/api/v1/people/{person_id}",
    "/api/v1/policy/apply",
    "/api/v1/policy/plan",
    "/api/v1/reviews",
    "/api/v1/reviews/items/{item_id}/decision",
    "/api/v1/reviews/{campaign_id}/accept",
    "/api/v1/reviews/{campaign_id}/items",
    "/api/v1/roles",
    "/api/v1/rotations",
    "/api/v1/rotations/{rotation_id}",
    "/api/v1/secrets",
    "/api/v1/secrets/{name}",
    "/api/v1/service-accounts",
    "/api/v1/service-accounts/{account_id}",
    "/api/v1/systems",
    "/api/v1/systems/{system_id}",
    "/api/v1/token",
    "/api/v1/tokens",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from keysteward.config import Settings
    from keysteward.db import open_store

    store: Store = open_store(Settings(home=tmp_path_factory.mktemp("schema-home")))
    with serve_api(store) as api:
        yield api
    store.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(served: Api) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")


def test_openapi_lists_every_route(served: Api) -> None:
    document = served.client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == EXPECTED_PATHS


def test_openapi_document_is_valid(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= len(EXPECTED_PATHS)


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


# NOTE: schemathesis's own pytest integration (``from_fixture``) fails on this
# pytest version with "'Function' object has no attribute '_nodeid'", so each
# operation's strategy is run through Hypothesis directly.
def test_api_keeps_its_schema(api_schema: schemathesis.BaseSchema, served: Api) -> None:
    headers = {"Authorization": f"Bearer {served.tokens['admin']}"}
    checked = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        call()
        checked += 1
    assert checked >= len(EXPECTED_PATHS)
