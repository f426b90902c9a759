"""What a careful payments API refuses, each as one 422 validation_error that names what is wrong
(never a 500, never a silent acceptance): an instant out of range, a JSON member sent twice, an
amount outside the decimal grammar, a number too long to convert. And a 405 names the methods its
path takes.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.support.factories import problem

# --- 405 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/holds", "GET, POST"),
        ("PUT", "/transaction", "POST"),
        ("GET", "/transaction", "POST"),
        ("PUT", "/balance/user_001/GC", "GET"),
        ("DELETE", "/transaction/batch", "GET, POST"),  # GET: a transaction whose id is batch
        ("GET", "/holds/some-hold/capture", "POST"),
        ("PATCH", "/admin/assets", "POST"),
        ("POST", "/health", "GET"),
        ("DELETE", "/console/", "GET, HEAD"),
    ],
)
def test_a_405_lists_the_methods_its_path_takes(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)

    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
