"""Every `request.app[...]` key of the web app, in one place.

`app/web/application.py` (create_app) sets all of them before the app starts serving:
- STORE: the `app.storage.store.Store` (jobs, event logs, results).
- HUB: the `app.web.hub.Hub` that fans events out to SSE subscribers.
- CONFIG: the `app.config.Config` (heartbeat seconds, CORS origins, limits...).
- METRICS: the `app.web.metrics.Metrics` (Prometheus registry; SSE counters are read from `Hub.stats`).
- RUNNER: what runs jobs: the `saga.runner.JobRunner` (embedded), or the
  `app.queue_runner.QueueRunner` handing them to workers (Redis).
- REDIS: with Redis only, the instance's `Shared` connections (event reader, queue, cancels).
- SERVICE: the `app.service.JobService` (submit, cancel, per-user active counts).
- AUTH: the `app.security.auth.Auth` (tokens, login code, failed-login limits).
- SESSIONS: the `app.security.sessions.Sessions` (login sessions, kept in the store).

The auth middleware puts the caller's `app.security.auth.User` in `request[USER]` for every
/api route except POST/DELETE /api/session, and `app.security.auth.visible_job(request, job_id)`
returns the JobRecord or raises the JSON 404 (another user's job looks missing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from app.config import Config
    from app.security.auth import Auth, User
    from app.security.sessions import Sessions
    from app.service import JobService
    from app.storage.store import Store
    from app.web.hub import Hub
    from app.web.metrics import Metrics
    from app.service import Slots
    from app.web.application import Shared

STORE: web.AppKey[Store] = web.AppKey("store")
HUB: web.AppKey[Hub] = web.AppKey("hub")
CONFIG: web.AppKey[Config] = web.AppKey("config")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
RUNNER: web.AppKey[Slots] = web.AppKey("runner")
REDIS: web.AppKey[Shared] = web.AppKey("redis")
AUTH: web.AppKey[Auth] = web.AppKey("auth")
SERVICE: web.AppKey[JobService] = web.AppKey("service")
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
USER: web.RequestKey[User] = web.RequestKey("user")
