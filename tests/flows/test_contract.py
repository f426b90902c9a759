"""Every error code is mapped to a status and documented, and the OpenAPI document lists the
new flows.
"""

from typing import get_args

from fastapi.testclient import TestClient

from wallet.api.docs import _EXAMPLES
from wallet.api.problems import STATUS_BY_CODE
from wallet.client.models import TransactionType as ClientTransactionType
from wallet.domain.errors import WalletError
from wallet.domain.ledger import POSTABLE_TRANSACTION_TYPES


def _codes() -> set[str]:
    classes: list[type[WalletError]] = list(WalletError.__subclasses__())
    for cls in classes:
        classes.extend(cls.__subclasses__())
    return {cls.code for cls in classes}


def test_every_error_code_has_a_status_and_an_example() -> None:
    assert _codes() - set(STATUS_BY_CODE) == set()
    assert _codes() - set(_EXAMPLES) == set()
    expected = {
        "refund_exceeds_original": 422,
        "not_refundable": 422,
        "batch_failed": 422,
        "hold_not_found": 404,
        "hold_expired": 409,
        "hold_not_pending": 409,
    }
    assert {code: STATUS_BY_CODE[code] for code in expected} == expected


def test_the_openapi_document_shows_the_new_flows(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/transaction/batch",
        "/holds",
        "/holds/{hold_id}",
        "/holds/{hold_id}/capture",
        "/holds/{hold_id}/release",
    ):
        assert path in paths
    as_of = [p["name"] for p in paths["/balance/{user_id}/{asset_code}"]["get"]["parameters"]]
    assert "as_of" in as_of
    capture = paths["/holds/{hold_id}/capture"]["post"]["responses"]
    assert set(capture["409"]["content"]["application/problem+json"]["examples"]) == {
        "hold_expired",
        "hold_not_pending",
    }


def test_the_postable_kinds_are_one_list_everywhere(client: TestClient) -> None:
    """The domain defines the kinds a client may post; the model, the history filter, the
    OpenAPI document and the Python client all name exactly those.
    """
    expected = [kind.value for kind in POSTABLE_TRANSACTION_TYPES]
    schema = client.get("/openapi.json").json()
    posted = schema["components"]["schemas"]["TransactionCreate"]["properties"]
    assert posted["transaction_type"]["enum"] == expected
    [history_filter] = [
        p
        for p in schema["paths"]["/transaction/{user_id}/history"]["get"]["parameters"]
        if p["name"] == "transaction_type"
    ]
    assert history_filter["schema"]["anyOf"][0]["enum"] == expected
    assert list(get_args(ClientTransactionType)) == expected
    assert client.get("/transaction/user_001/history?transaction_type=hold").status_code == 422


def test_every_operation_documents_the_refusals_of_the_servers_protocol(
    client: TestClient,
) -> None:
    """Any request may be refused by the server before it reaches a route (server.py): a head
    too large, or too slow to arrive. Every operation says so, so a client generated from the
    document knows these answers."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert {"408", "414", "431"} <= set(operation["responses"]), (method, path)
