"""PATCH bodies: a field may be left out; ``null`` clears an optional one, and is a 422 on a
field the resource cannot be without."""

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

_NULL = {"type": "null"}


def _reject_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class _NotNull:
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_reject_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The schema says what the server accepts: the field may be absent, never null.
        json_schema = handler(schema)
        branches = [branch for branch in json_schema.pop("anyOf", []) if branch != _NULL]
        if len(branches) == 1:
            json_schema.update(branches[0])
        elif branches:
            json_schema["anyOf"] = branches
        return json_schema


NotNull = _NotNull()
"""Use as ``Annotated[T | None, NotNull] = None``: omitted is fine, ``null`` is a 422."""
