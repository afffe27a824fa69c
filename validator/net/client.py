"""A well-behaved HTTP client for the network features (server search probe, DICOMweb checks).

Every network feature goes through `HttpClient` so they all behave the same way towards the
servers they test: read-only by default (only GET, HEAD and a caller-approved POST of a search),
a timeout on every request, retries with exponential backoff on connection errors, 429 and 5xx,
a request budget per run, a minimum interval between requests, a cap on the size of an answer
(read in chunks, so a huge answer is cut off rather than held in memory), redirects followed
only within a bound, TLS verification on unless the user turns it off, and credentials taken
from environment variables so they never appear on a command line or in a report.

Failures are never exceptions the caller has to guess at: `fetch` either returns an `Answer`
or raises `NetworkError` with a message that names the URL and what went wrong.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

# Statuses worth another try: the server said "later" or failed on its side.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD"})


class NetworkError(Exception):
    """A request that could not be answered: the message names the URL and the cause."""

    def __init__(self, url: str, problem: str) -> None:
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.problem = problem


class BudgetExhausted(NetworkError):
    """The run's request budget is spent; later requests are not sent."""


@dataclass(frozen=True)
class ClientSettings:
    timeout: float = 30.0  # seconds, for connecting and for each read
    retries: int = 2  # further attempts after the first, on connection errors, 429 and 5xx
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    budget: int = 1000  # requests per run, retries included
    min_interval: float = 0.0  # seconds between two requests (a rate limit)
    max_bytes: int = 64 * 1024 * 1024  # one answer's body
    max_redirects: int = 5
    verify_tls: bool = True
    token_env: str | None = None  # name of the environment variable holding a bearer token
    user_env: str | None = None  # names of the variables holding basic-auth user and password
    password_env: str | None = None
    user_agent: str = "imaging-validator"


@dataclass
class Answer:
    """What came back: status, headers (lower-case names), the body, and where it came from."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float
    attempts: int = 1

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class HttpClient:
    settings: ClientSettings = field(default_factory=ClientSettings)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None  # tests pass httpx.MockTransport
    requests_sent: int = 0
    _last: float = 0.0
    _client: httpx.Client | None = None

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def budget_left(self) -> int:
        return max(0, self.settings.budget - self.requests_sent)

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.settings.timeout,
                verify=self.settings.verify_tls,
                follow_redirects=False,  # followed here, so every hop counts against the budget
                headers={"user-agent": self.settings.user_agent},
                auth=self._auth(),
                transport=self.transport,
            )
        return self._client

    def _auth(self) -> httpx.Auth | None:
        s = self.settings
        if s.token_env:
            token = self.environ.get(s.token_env)
            if not token:
                raise NetworkError("(no request sent)", f"environment variable {s.token_env} is not set or empty")
            return _Bearer(token)
        if s.user_env or s.password_env:
            user = self.environ.get(s.user_env or "", "")
            password = self.environ.get(s.password_env or "", "")
            if not user:
                raise NetworkError("(no request sent)", f"environment variable {s.user_env} is not set or empty")
            return httpx.BasicAuth(user, password)
        return None

    def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        allow_post: bool = False,
    ) -> Answer:
        """One request (with its retries and redirects); raises NetworkError when no answer came."""
        method = method.upper()
        if method not in SAFE_METHODS and not (method == "POST" and allow_post):
            # Read-only by default: a test harness must not change the server it tests.
            raise NetworkError(url, f"{method} refused: the client is read-only")
        hops = 0
        current = url
        origin = _origin(url)
        while True:
            if current.split(":", 1)[0].lower() not in ("http", "https"):
                raise NetworkError(current, "not an http or https URL")
            # Credentials go only to the origin the user named, never to where a redirect points.
            send_auth = origin is not None and _origin(current) == origin
            answer = self._with_retries(method, current, headers, data, send_auth)
            if answer.status in (301, 302, 303, 307, 308) and "location" in answer.headers:
                hops += 1
                if hops > self.settings.max_redirects:
                    raise NetworkError(url, f"more than {self.settings.max_redirects} redirects")
                current = str(httpx.URL(current).join(answer.headers["location"]))
                if answer.status == 303:
                    method, data = "GET", None
                continue
            return answer

    def _with_retries(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        send_auth: bool,
    ) -> Answer:
        delay = self.settings.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._once(method, url, headers, data, send_auth)
            except NetworkError as error:
                if isinstance(error, BudgetExhausted) or attempt > self.settings.retries or not _transient(error):
                    raise
            else:
                if answer.status not in RETRY_STATUSES or attempt > self.settings.retries:
                    answer.attempts = attempt
                    return answer
                retry_after = _retry_after(answer.headers.get("retry-after"))
                if retry_after is not None:
                    delay = max(delay, min(retry_after, 60.0))
            self.sleep(delay)
            delay *= 2

    def _once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        send_auth: bool,
    ) -> Answer:
        if self.requests_sent >= self.settings.budget:
            raise BudgetExhausted(url, f"request budget of {self.settings.budget} spent; request not sent")
        http = self._http()  # credentials are checked here, before anything is sent or counted
        wait = self._last + self.settings.min_interval - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self.requests_sent += 1
        self._last = time.monotonic()
        started = time.monotonic()
        try:
            request = http.build_request(method, url, headers=dict(headers or {}), data=data)
            response = http.send(request, stream=True, **({} if send_auth else {"auth": None}))
        except httpx.InvalidURL as error:
            raise NetworkError(url, f"not a usable URL ({error})") from None
        except httpx.UnsupportedProtocol:
            raise NetworkError(url, "not an http or https URL") from None
        except httpx.TimeoutException:
            raise _Transient(url, f"no answer within {self.settings.timeout:g} s") from None
        except httpx.ConnectError as error:
            raise _Transient(url, f"cannot connect ({_reason(error)})") from None
        except httpx.HTTPError as error:
            raise _Transient(url, f"request failed ({_reason(error)})") from None
        try:
            body = self._read_bounded(url, response)
        finally:
            response.close()
        return Answer(
            method=method,
            url=url,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=body,
            elapsed=time.monotonic() - started,
        )

    def _read_bounded(self, url: str, response: httpx.Response) -> bytes:
        limit = self.settings.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise NetworkError(url, f"answer of {int(declared):,} bytes is over the limit of {limit:,} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise NetworkError(url, f"answer is over the limit of {limit:,} bytes; reading stopped")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise _Transient(url, f"answer not complete within {self.settings.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise _Transient(url, f"answer broken off ({_reason(error)})") from None
        return b"".join(chunks)


class _Transient(NetworkError):
    """A failure another attempt may not meet (connection refused, timeout, broken answer)."""


def _transient(error: NetworkError) -> bool:
    return isinstance(error, _Transient)


def no_answer(error: NetworkError) -> bool:
    """Whether the server gave no answer at all (cannot connect, timed out, broke off), as opposed
    to an answer refused here (too large, budget spent): a caller may stop asking a server that is down."""
    return isinstance(error, _Transient)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["authorization"] = self._value
        yield request


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    return parsed.scheme, parsed.host, parsed.port


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff applies


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text or type(error).__name__
