"""PATCH bodies: a field may be left out; ``null`` clears an optional one, and is a 422 on a
field the resource cannot be without."""

from typing import Any

from pydantic import BeforeValidator


def _reject_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


NotNull = BeforeValidator(_reject_null)
"""Use as ``Annotated[T | None, NotNull] = None``: omitted is fine, ``null`` is a 422."""
