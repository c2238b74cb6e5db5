"""The browser page: `/` serves index.html, `/static/...` its modules and styles.

Everything the page needs ships in app/static (no CDN, no build step), so it works
offline; the CSP keeps it that way by refusing any other origin.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parents[1] / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


async def index(_: web.Request) -> web.FileResponse:
    # no-cache: the page revalidates after an upgrade instead of running stale modules.
    return web.FileResponse(
        STATIC_DIR / "index.html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP},
    )


def setup(app: web.Application) -> None:
    """Register the page's routes on `app` (call before the app starts)."""
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static/", STATIC_DIR, name="static")
