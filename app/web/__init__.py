"""The web edge: the aiohttp application, its routes and middlewares, the event stream and its fan-out, the listening socket."""
