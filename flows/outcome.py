"""How a flow run ends: Failed when its work did not all succeed, so Prefect shows and alerts.

A nightly run in which records failed, or a verification that found a record failed or could not
decide, has done its job of reporting, but it did not succeed: ending it "Completed" would hide it
in the run list and from automations that watch for failures. The summary travels with the
Failed state either way, so callers still get the counts (:func:`summary_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.client.schemas.objects import State
from prefect.states import Failed


def ended(summary: dict[str, Any], *, failure: str | None) -> dict[str, Any] | State:
    """``summary`` as the run's result; inside a Failed state, with ``failure`` as its message,
    when the run did not fully succeed."""
    if failure is not None:
        return Failed(message=failure, data=summary)
    return summary


def summary_of(run: Callable[..., Any], **parameters: Any) -> dict[str, Any]:
    """Run a flow and return its summary whether it ended Completed or Failed; a flow that
    crashed (an exception, not a verdict) raises it here."""
    state = run(**parameters, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, dict):
        raise TypeError(f"the flow returned {type(result).__name__}, not its summary")
    return result
