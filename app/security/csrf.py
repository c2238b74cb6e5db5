"""Cross-site writes refused: a browser sends the session cookie along with a request
that any other site makes it send, so a state-changing request without a bearer token
must show that it comes from this service's own page (or an allowed CORS origin).

Browsers mark every POST/DELETE with `Origin` and, lately, `Sec-Fetch-Site`; a page
cannot forge either. Bearer-token requests are exempt: another site cannot make the
browser attach an Authorization header without a preflight, which app/web/cors.py refuses.
"""

from __future__ import annotations

import logging

from aiohttp import web

from app.security.auth import bearer_token
from app.security.proxy import normal_origin, own_origin
from app.web.errors import ApiError
from app.web.keys import CONFIG

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS = frozenset({"cross-site", "same-site"})


def cross_site(origin: str | None, fetch_site: str | None, own: str, allowed: tuple[str, ...]) -> str | None:
    """What marks the request as cross-site, or None when it is not."""
    if fetch_site == "same-origin":  # the browser says the page is ours, whatever a proxy did to Host
        return None
    if origin is not None:
        return None if normal_origin(origin) in (own, *allowed) else f"Origin {origin}"
    if fetch_site in CROSS:
        return f"Sec-Fetch-Site: {fetch_site}"
    return None  # no browser marks at all: not a browser, so not a forged cross-site request


@web.middleware
async def csrf_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS and request.path.startswith("/api/") and bearer_token(request) is None:
        config = request.app[CONFIG]
        own = own_origin(request, config.trust_proxy)
        allowed = tuple(normal_origin(o) for o in config.cors_origin)
        found = cross_site(request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), own, allowed)
        if found is not None:
            log.warning("refused cross-site %s %s (%r; this service is %s)", request.method, request.path, found, own)
            raise ApiError(403, "cross_site_request", (
                f"Refused a cross-site {request.method} ({found}): only pages of {own} or an origin in "
                "--cors-origin may change anything with a session cookie; send a bearer token instead. "
                "Behind a reverse proxy, pass the Host header through or use --trust-proxy."))
    return await handler(request)
