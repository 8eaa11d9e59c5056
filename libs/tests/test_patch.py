from typing import Annotated

import pytest
from momentum_libs.patch import NotNull
from pydantic import BaseModel, ValidationError


class Change(BaseModel):
    title: Annotated[str | None, NotNull] = None
    note: str | None = None


def test_a_not_null_field_may_be_left_out_but_not_null() -> None:
    assert Change().model_fields_set == set()
    assert Change(title="t").title == "t"
    assert Change(note=None).model_fields_set == {"note"}
    with pytest.raises(ValidationError) as caught:
        Change.model_validate({"title": None})
    assert caught.value.errors()[0]["loc"] == ("title",)
    assert "may not be null" in caught.value.errors()[0]["msg"]


def test_a_not_null_field_is_not_nullable_in_the_schema() -> None:
    properties = Change.model_json_schema()["properties"]
    assert properties["title"]["type"] == "string"
    assert "anyOf" not in properties["title"]
    assert {"type": "null"} in properties["note"]["anyOf"]
