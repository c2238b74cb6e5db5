"""Who is calling and whether to let them: tokens, login sessions, cross-site writes, failed-login limits, proxy headers."""
