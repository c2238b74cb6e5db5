"""Solver workers: processes that take jobs from the shared queue and run them (Redis)."""
