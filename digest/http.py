"""HTTP for the sources: timeouts, a size cap, conditional GET and retries, one client per run.

    Http.get(url, params) -> bytes, or None when the server answers 304 Not Modified

Validators (ETag, Last-Modified) come in from the store and the new ones are collected in
`Http.validators_seen`; the pipeline stores a source's validators in the same transaction as
its papers, so a 304 can never hide papers that were fetched but not stored.

Connect errors, timeouts, 429 and 5xx are retried with exponential backoff by stamina; a 429 or
503 with Retry-After waits what the server asks (up to `MAX_RETRY_AFTER`, else it fails now).
Everything else ends as a `FetchError` naming the URL.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC

import httpx
import stamina

from digest import __version__
from digest.errors import FetchError, HTTPStatusError

USER_AGENT = f"digest/{__version__} (personal research-paper digest; python-httpx)"
MAX_RETRY_AFTER = 120.0  # seconds; a server asking for longer fails this run, the next one retries


@dataclass(frozen=True)
class Validators:
    """What a server gave to make the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None


class _Retryable(Exception):
    """A response worth asking again (429, 5xx); carries the server's Retry-After if any."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        self.response = response
        self.retry_after = retry_after
        super().__init__(f"HTTP {response.status_code}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry transport errors and 429/5xx, waiting as long as the server asks."""
    if isinstance(exc, _Retryable):
        if exc.retry_after is None:
            return True
        return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER else False
    return isinstance(exc, httpx.TransportError)


def _describe(exc: httpx.TransportError) -> str:
    kind = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "read timed out",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "connection broken",
    }.get(type(exc), type(exc).__name__)
    detail = str(exc)
    return f"{kind} ({detail})" if detail and detail not in kind else kind


class Http:
    """One httpx client for a run, with the limits and politeness every source needs."""

    def __init__(
        self,
        *,
        timeout: float = 20.0,
        max_bytes: int = 20_000_000,
        attempts: int = 4,
        user_agent: str | None = None,
        validators: Mapping[str, Validators] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.attempts = attempts
        self.validators = dict(validators or {})
        self.validators_seen: dict[str, Validators] = {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": user_agent or USER_AGENT},
            follow_redirects=True,
            max_redirects=5,
        )

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self, url: str, params: Mapping[str, str] | None = None, *, cache: bool = True
    ) -> bytes | None:
        """The body at url, or None for 304 Not Modified. Raises FetchError naming the URL."""
        full = str(httpx.URL(url, params=params))
        headers = {}
        known = self.validators.get(full) if cache else None
        if known and known.etag:
            headers["If-None-Match"] = known.etag
        if known and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        try:
            for attempt in stamina.retry_context(
                on=_backoff, attempts=self.attempts, timeout=300.0, wait_initial=1.0, wait_max=30.0
            ):
                with attempt:
                    response, body = self._get_once(full, headers)
        except _Retryable as e:
            wait = f", asked to retry after {e.retry_after:.0f} s" if e.retry_after else ""
            raise HTTPStatusError(f"HTTP {e.response.status_code} from {full}{wait}") from e
        except httpx.TransportError as e:
            raise FetchError(f"{_describe(e)}: {full}") from e
        if response.status_code == 304:
            return None
        if cache:
            v = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
            if v.etag or v.last_modified:
                self.validators_seen[full] = v
        return body

    def forget(self, url: str, params: Mapping[str, str] | None = None) -> None:
        """Do not keep the validators of this response (its content was not worth caching)."""
        self.validators_seen.pop(str(httpx.URL(url, params=params)), None)

    def _get_once(self, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
        with self._client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise _Retryable(response, parse_retry_after(response.headers.get("Retry-After")))
            if status == 304:
                return response, b""
            if status >= 400:
                raise HTTPStatusError(f"HTTP {status} {response.reason_phrase} from {url}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchError(
                    f"response too large ({int(declared):,} bytes > {self.max_bytes:,}): {url}"
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"response too large (over {self.max_bytes:,} bytes): {url}")
                chunks.append(chunk)
            return response, b"".join(chunks)
