"""Upstox API: typed client, process-wide rate limiter, OAuth helpers."""
