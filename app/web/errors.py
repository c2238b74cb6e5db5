"""The one error shape of the API: JSON `{"error": short title, "detail": one human sentence}`."""

from __future__ import annotations

import json

from aiohttp import web

from app.storage.store import DISK_FULL, StoreUnavailable


def json_error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": error, "detail": detail})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


class ApiError(Exception):
    """Raised by handlers; the error middleware answers it with `json_error`."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers

    def response(self) -> web.Response:
        return json_error(self.status, self.error, self.detail, self.headers)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, "bad_request", detail)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", detail)


def store_error(err: StoreUnavailable) -> ApiError:
    """The HTTP answer to a write the store refused: 507 for a full disk, else 503 with Retry-After."""
    if err.kind == DISK_FULL:
        return ApiError(507, "insufficient_storage", err.detail)
    return ApiError(503, "store_unavailable", f"{err.detail} Try again shortly.", {"Retry-After": str(err.retry_after)})
