"""Helpers for tests of the HTTP API."""

import httpx

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, *needles: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    for needle in needles:
        assert needle in body["detail"], body
    return body
