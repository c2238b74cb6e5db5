"""The generated admin token and session secret, shared by every instance through Redis.

Read once at start-up, before the event loop runs, hence the plain (blocking) client. The
first instance to start makes them (SET NX); every later one reads the same values, so a
session cookie or token fingerprint from one instance is valid on all of them.
"""

from __future__ import annotations

from typing import Callable

import redis

from app.storage import redis_keys as keys
from app.storage.redis_connection import CONNECT_TIMEOUT


class RedisSecrets:
    def __init__(self, url: str) -> None:
        self._url = url

    def keep(self, name: str, make: Callable[[], str]) -> tuple[str, bool]:
        client = redis.Redis.from_url(self._url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT)
        try:
            made = bool(client.set(keys.secret_key(name), make(), nx=True))
            return str(client.get(keys.secret_key(name))), made
        except redis.RedisError as err:
            raise ValueError(f"cannot read the shared {name} from Redis at {self._url}: {err}") from None
        finally:
            client.close()
