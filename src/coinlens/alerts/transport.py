"""The HTTP session Apprise's plugins send through: requests' API on a kept-alive urllib3 pool.

Apprise plugins call `requests.request/post(…)`; `channels` routes those calls to the
channel's `KeptSession`. A plain `requests.Session` spent ~0.4 ms of CPU per request on
merging session settings, cookie jars, hooks and redirect resolution — three quarters of a
webhook send. For the calls alert plugins make (bytes/str/JSON body, optional basic auth,
no files, cookies, proxies, streaming or client certificates, redirects off) `KeptSession`
prepares the request with requests' own `PreparedRequest` and sends it on urllib3 directly
(~0.1 ms); anything else takes requests' full path unchanged.

Kept the same on the fast path: certificate verification (certifi or `REQUESTS_CA_BUNDLE`,
`verify=False` only when the URL says so), connect/read timeouts, response hooks (the
channel module's status/`Retry-After` recorder), no retries, and urllib3 errors surfacing as
the requests exceptions plugins catch (the table below mirrors `HTTPAdapter.send`).
Environment proxies send the request down requests' path, which honours them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.exceptions as rex
import urllib3
import urllib3.connection
import urllib3.exceptions as u3
from requests.hooks import dispatch_hook
from requests.structures import CaseInsensitiveDict
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_encoding_from_headers

# urllib3 error → requests error, first match wins (NewConnectionError subclasses
# ConnectTimeoutError, so it comes first, as in requests.adapters.HTTPAdapter.send).
_ERRORS: tuple[tuple[type[BaseException], type[rex.RequestException]], ...] = (
    (u3.NewConnectionError, rex.ConnectionError),
    (u3.ConnectTimeoutError, rex.ConnectTimeout),
    (u3.ReadTimeoutError, rex.ReadTimeout),
    (u3.SSLError, rex.SSLError),
    (u3.HTTPError, rex.ConnectionError),  # ProtocolError (connection reset/aborted), …
    (OSError, rex.ConnectionError),
)
# Keyword arguments whose non-empty value needs requests' full path.
_SLOW_KWARGS = ("files", "cookies", "hooks", "proxies", "stream", "cert")


class _OneWrite:
    """Connection mixin: the header block goes out with the body's first chunk, in one write.

    http.client writes them separately; on loopback and in VMs each write is a syscall plus a
    wake-up of the receiver, which measured ~0.14 ms of CPU per write — more than the rest of
    the request.
    """

    _holding = False
    _held = b""

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        self._holding = True  # `_send_output` → `send(header block)` is kept back
        try:
            super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
        finally:
            self._holding = False

    def send(self, data: Any) -> None:
        if self._holding and isinstance(data, bytes):
            self._held += data
            return
        if self._held and isinstance(data, bytes):
            data, self._held = self._held + data, b""
        self._flush()
        super().send(data)  # type: ignore[misc]

    def _flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            super().send(held)  # type: ignore[misc]

    def getresponse(self) -> Any:
        self._flush()  # a request without a body
        return super().getresponse()  # type: ignore[misc]

    def close(self) -> None:
        self._held = b""
        super().close()  # type: ignore[misc]


class _HttpConnection(_OneWrite, urllib3.connection.HTTPConnection):
    pass


class _HttpsConnection(_OneWrite, urllib3.connection.HTTPSConnection):
    pass


class _HttpPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HttpConnection


class _HttpsPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HttpsConnection


def _timeout(value: Any) -> urllib3.Timeout:
    if isinstance(value, urllib3.Timeout):
        return value
    if isinstance(value, tuple):
        connect, read = value
        return urllib3.Timeout(connect=connect, read=read)
    return urllib3.Timeout(connect=value, read=value)


def _translate(exc: BaseException, request: requests.PreparedRequest) -> rex.RequestException:
    for source, target in _ERRORS:
        if isinstance(exc, source):
            return target(exc, request=request)
    return rex.ConnectionError(exc, request=request)


class KeptSession(requests.Session):
    """A channel's session: cookies refused, environment settings looked up once per
    origin, and the fast path above on one kept-alive connection per origin."""

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # stateless
        self._env: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._pools = urllib3.PoolManager(num_pools=4, maxsize=1)
        self._pools.pool_classes_by_scheme = {"http": _HttpPool, "https": _HttpsPool}

    def merge_environment_settings(  # type: ignore[override] # typeshed types are looser
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        key = (urlsplit(url)[:2], repr(proxies), stream, verify, cert)
        if key not in self._env:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._env[key] = dict(merged)
        hit = self._env[key]
        return {**hit, "proxies": dict(hit["proxies"])}

    def request(  # type: ignore[override] # same parameters, forwarded by keyword
        self, method: str | bytes, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        """requests' `Session.request`, on the fast path when the call allows it."""
        verify = self._fast_verify(str(url), kwargs)
        if verify is None:
            return super().request(method, url, **kwargs)
        return self._send_fast(str(method), str(url), verify, kwargs)

    def _fast_verify(self, url: str, kwargs: Mapping[str, Any]) -> bool | str | None:
        """The effective `verify` when the fast path applies, else None."""
        if any(kwargs.get(k) for k in _SLOW_KWARGS) or kwargs.get("allow_redirects", True):
            return None
        if not url.startswith(("http://", "https://")):
            return None
        auth = kwargs.get("auth")
        if auth is not None and not (isinstance(auth, tuple) and len(auth) == 2):
            return None
        body = kwargs.get("data")
        if body is not None and not isinstance(body, str | bytes):
            return None
        env = self.merge_environment_settings(url, {}, None, kwargs.get("verify", True), None)
        if env["proxies"]:
            return None
        verify: bool | str = env["verify"]
        return verify

    def _pool(self, url: str, verify: bool | str) -> urllib3.HTTPConnectionPool:
        if not url.startswith("https://"):
            return self._pools.connection_from_url(url)
        tls: dict[str, Any] = {"cert_reqs": "CERT_NONE"}
        if verify is not False:
            path = DEFAULT_CA_BUNDLE_PATH if verify is True else str(verify)
            tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": path}
        return self._pools.connection_from_url(url, pool_kwargs=tls)

    def _send_fast(
        self, method: str, url: str, verify: bool | str, kwargs: Mapping[str, Any]
    ) -> requests.Response:
        headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict(self.headers)
        headers.update(kwargs.get("headers") or {})
        prep = requests.PreparedRequest()
        prep.prepare(
            method=method, url=url, data=kwargs.get("data"), json=kwargs.get("json"),
            params=kwargs.get("params"), auth=kwargs.get("auth"),
            headers={k: v for k, v in headers.items() if v is not None},
        )  # fmt: skip
        assert prep.url is not None  # noqa: S101 - prepare() always sets it
        start = dt.datetime.now(dt.UTC)
        try:
            raw = self._pool(prep.url, verify).urlopen(
                prep.method or method, prep.path_url, body=prep.body, headers=prep.headers,
                redirect=False, assert_same_host=False, retries=False,
                preload_content=True, decode_content=True, timeout=_timeout(kwargs.get("timeout")),
            )  # fmt: skip
        except (u3.HTTPError, OSError) as exc:
            raise _translate(exc, prep) from exc
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.reason = raw.reason or ""
        response.url = prep.url
        response.request = prep
        response.raw = raw
        response._content = raw.data
        response.elapsed = dt.datetime.now(dt.UTC) - start
        return dispatch_hook("response", self.hooks, response)  # type: ignore[no-untyped-call,no-any-return] # requests ships no hook types

    def close(self) -> None:
        """Close requests' adapters and the fast path's connections."""
        super().close()
        self._pools.clear()
