"""What a request says about where it came from: scheme, own origin, client address.

Behind a reverse proxy the socket shows the proxy, not the browser. The proxy's
X-Forwarded-Proto / -Host / -For headers are believed only with `--trust-proxy`:
without a proxy in front, any client could send them and pose as HTTPS or as
another address (and so dodge the per-address login limit).
"""

from __future__ import annotations

from aiohttp import web

DEFAULT_PORTS = {"http": "80", "https": "443"}


def _forwarded(request: web.Request, name: str) -> str | None:
    """The last value of X-Forwarded-<name>: the one the nearest proxy (the trusted one) added."""
    values = [v.strip() for v in request.headers.get(f"X-Forwarded-{name}", "").split(",") if v.strip()]
    return values[-1] if values else None


def scheme(request: web.Request, trust_proxy: bool) -> str:
    if request.secure:  # TLS ended in this process
        return "https"
    forwarded = _forwarded(request, "Proto") if trust_proxy else None
    return "https" if forwarded and forwarded.lower() == "https" else "http"


def is_https(request: web.Request, trust_proxy: bool) -> bool:
    return scheme(request, trust_proxy) == "https"


def normal_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, the default port dropped, as browsers send Origin."""
    origin = origin.strip().rstrip("/").lower()
    kind, _, host = origin.partition("://")
    if host.endswith(":" + DEFAULT_PORTS.get(kind, "")):
        host = host.rsplit(":", 1)[0]
    return f"{kind}://{host}"


def own_origin(request: web.Request, trust_proxy: bool) -> str:
    """The origin the browser used to reach this service (what a same-origin page sends as Origin)."""
    host = (_forwarded(request, "Host") if trust_proxy else None) or request.host
    return normal_origin(f"{scheme(request, trust_proxy)}://{host}")


def client_address(request: web.Request, trust_proxy: bool) -> str:
    """The caller's address: the socket peer, or behind a trusted proxy the address it saw."""
    forwarded = _forwarded(request, "For") if trust_proxy else None
    return forwarded or request.remote or "unknown"
