"""The typed contract between SQL and Python: a pydantic model for every SQL result Python reads.

One module per feature (``xpbase/models/engine.py``, ``economy.py`` ...), each
with its models and a ``RESULTS`` mapping of SQL function name to the model
of its answer. ``results()`` collects them all, so a test can call every
public function and validate its answer: a key renamed in SQL fails CI
instead of reading as a default in Python (how the bot's ``/checkin`` once
answered "+0 XP" for every check-in).

Models derive from ``Result``, which refuses keys it does not declare, so the
model and the SQL answer stay the same shape in both directions.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import BaseModel, ConfigDict


class Result(BaseModel):
    """Base of every SQL result model: unknown keys are an error, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def results() -> dict[str, Any]:
    """``{sql function name: result model}`` from every module of this package (their ``RESULTS``).

    A model is a ``Result`` subclass, or a union of them for an answer with
    several shapes (read it with ``isinstance`` or its ``Literal`` field).

    Raises ValueError when two modules claim the same function.
    """
    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for function, model in getattr(module, "RESULTS", {}).items():
            if function in found:
                raise ValueError(f"{function} has two result models ({info.name} and another module)")
            found[function] = model
    return found
