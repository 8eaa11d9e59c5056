"""tracking's documents are declared through the storage contract analytics' rebuild reads."""

import types
from typing import Any, Union, get_args, get_origin

import pytest
from beanie import Document
from momentum_libs.tracking_store import CONTRACT, contract_fields
from momentum_tracking.main import CONTRACT_MODELS


def _types(annotation: Any) -> set[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return set(get_args(annotation))
    return {annotation}


@pytest.mark.parametrize("model", CONTRACT_MODELS, ids=lambda m: m.__name__)
def test_each_collection_has_every_contract_field_with_its_type(model: type[Document]) -> None:
    collection = model.Settings.name
    assert collection in CONTRACT, f"{collection} is not in momentum_libs.tracking_store"
    for field, annotation in contract_fields(CONTRACT[collection]).items():
        assert field in model.model_fields, f"{collection}.{field} is not stored"
        stored = _types(model.model_fields[field].annotation)
        # Every value tracking may store is one the rebuild accepts.
        assert stored <= _types(annotation), (collection, field, stored)


def test_every_contract_collection_is_written_by_tracking() -> None:
    assert {m.Settings.name for m in CONTRACT_MODELS} == set(CONTRACT)
