"""Where jobs, event logs, results and sessions are kept: the Protocols and their SQLite backend."""
