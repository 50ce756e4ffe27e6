"""The base of every settings section (:mod:`archive.core.sections`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """One ``[section]`` of the settings: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
