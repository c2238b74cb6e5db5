"""The `timetabler` command line: serve, solve, generate."""
