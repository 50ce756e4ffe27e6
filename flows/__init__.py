"""Prefect flows: orchestration only; the work is in the library they call."""

import os

# Before Prefect is imported anywhere: no telemetry, also from an ephemeral API server.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
