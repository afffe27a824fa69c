"""The HTTP client every network feature uses behaves well towards the servers it talks to."""

from __future__ import annotations

import socket

import httpx
import pytest

from validator.net import BudgetExhausted, ClientSettings, HttpClient, NetworkError


def _client(handler, **settings) -> tuple[HttpClient, list[float]]:
    slept: list[float] = []
    client = HttpClient(
        settings=ClientSettings(**settings),
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
        environ={"TOKEN": "s3cret", "USER": "alice", "PASS": "pw"},
    )
    return client, slept


def test_a_503_is_retried_with_growing_backoff_and_the_answer_after_it_returned():
    statuses = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), json={"resourceType": "Bundle"})

    client, slept = _client(handler, retries=2, backoff=0.5)
    answer = client.fetch("http://fhir.test/ImagingStudy")
    assert (answer.status, answer.attempts, slept) == (200, 3, [0.5, 1.0])
    assert client.requests_sent == 3


def test_a_server_that_keeps_failing_gives_its_last_answer_after_the_retries():
    client, slept = _client(lambda r: httpx.Response(503), retries=1, backoff=0.1)
    assert client.fetch("http://fhir.test/x").status == 503
    assert slept == [0.1]


def test_the_request_budget_stops_requests_with_a_clear_error():
    client, _ = _client(lambda r: httpx.Response(200), budget=2)
    client.fetch("http://fhir.test/a")
    client.fetch("http://fhir.test/b")
    with pytest.raises(BudgetExhausted, match="request budget of 2 spent"):
        client.fetch("http://fhir.test/c")


def test_the_client_is_read_only_unless_a_search_post_is_allowed():
    client, _ = _client(lambda r: httpx.Response(200))
    for method in ("PUT", "DELETE", "POST"):
        with pytest.raises(NetworkError, match=f"{method} refused: the client is read-only"):
            client.fetch("http://fhir.test/ImagingStudy/1", method=method)
    assert client.requests_sent == 0
    assert client.fetch("http://fhir.test/ImagingStudy/_search", method="POST", allow_post=True).status == 200


def test_an_answer_over_the_size_limit_is_cut_off_and_named():
    client, _ = _client(lambda r: httpx.Response(200, content=b"x" * 5000), max_bytes=1000)
    with pytest.raises(NetworkError, match="over the limit of 1,000 bytes"):
        client.fetch("http://fhir.test/big")


def test_the_bearer_token_comes_from_the_environment_and_never_follows_a_redirect_elsewhere():
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("authorization")
        if request.url.host == "fhir.test":
            return httpx.Response(302, headers={"location": "http://elsewhere.test/x"})
        return httpx.Response(200)

    client, _ = _client(handler, token_env="TOKEN")
    assert client.fetch("http://fhir.test/start").status == 200
    assert seen == {"fhir.test": "Bearer s3cret", "elsewhere.test": None}


def test_a_missing_token_variable_is_named_before_any_request():
    client, _ = _client(lambda r: httpx.Response(200), token_env="NO_SUCH_VARIABLE")
    with pytest.raises(NetworkError, match="NO_SUCH_VARIABLE is not set"):
        client.fetch("http://fhir.test/x")
    assert client.requests_sent == 0


def test_basic_auth_comes_from_the_environment():
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=request.headers["authorization"])

    client, _ = _client(echo, user_env="USER", password_env="PASS")
    assert client.fetch("http://fhir.test/x").body == b"Basic YWxpY2U6cHc="  # base64 of alice:pw


def test_a_redirect_loop_is_bounded():
    client, _ = _client(lambda r: httpx.Response(302, headers={"location": "/again"}), max_redirects=3)
    with pytest.raises(NetworkError, match="more than 3 redirects"):
        client.fetch("http://fhir.test/loop")
    assert client.requests_sent == 4


def test_a_server_that_is_down_is_a_clear_error_after_the_retries():
    with socket.socket() as s:  # a port nothing listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    client = HttpClient(settings=ClientSettings(retries=1, backoff=0.01, timeout=2), sleep=slept.append)
    with client, pytest.raises(NetworkError, match=f"127.0.0.1:{port}/fhir: cannot connect"):
        client.fetch(f"http://127.0.0.1:{port}/fhir")
    assert (client.requests_sent, slept) == (2, [0.01])


def test_a_url_that_is_not_http_is_refused_clearly():
    client, _ = _client(lambda r: httpx.Response(200))
    with pytest.raises(NetworkError, match="not an http or https URL"):
        client.fetch("ftp://fhir.test/x")
