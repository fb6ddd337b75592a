"""/healthz: 200 JSON when the database answers, 503 when it does not; no login needed."""

from typing import Any

import pytest
from django.test import Client

from percolate_platform import health


@pytest.mark.django_db
def test_healthz_ok() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_healthz_needs_no_credentials_and_ignores_bad_ones() -> None:
    response = Client(HTTP_AUTHORIZATION="Token nonsense").get("/healthz")
    assert response.status_code == 200


def test_healthz_503_when_the_database_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    class Down:
        def cursor(self) -> Any:
            raise RuntimeError("connection refused")

    monkeypatch.setattr(health, "connection", Down())
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "connection refused"}
