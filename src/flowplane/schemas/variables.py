"""Variable models: named, mutable JSON values shared by flows, tasks and deployments, with their filters and sorts."""

from __future__ import annotations

import enum
import json
import re
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictFloat, StrictInt

from flowplane.schemas.base import ActionModel, ObjectModel
from flowplane.schemas.filters import CompositeFilter, LeafFilter, Operator

MAX_VARIABLE_NAME_LENGTH = 255
#: Longest value, as compact JSON (Prefect's limit).
MAX_VARIABLE_VALUE_LENGTH = 5000

_NAME = re.compile(r"^[a-z0-9_-]+$")


def check_variable_name(name: str) -> str:
    """Refuse names Prefect refuses: only lowercase letters, numbers, dashes and underscores."""
    if not _NAME.match(name):
        raise ValueError(
            "Variable name must only contain lowercase letters, numbers, and dashes or underscores."
        )
    return name


def check_variable_value(value: Any) -> Any:
    """Refuse values that are not JSON, or longer than ``MAX_VARIABLE_VALUE_LENGTH`` as JSON."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Variable value must be serializable to JSON ({exc})") from None
    if value is not None and len(text) > MAX_VARIABLE_VALUE_LENGTH:
        raise ValueError(
            f"Variable value must be less than {MAX_VARIABLE_VALUE_LENGTH} characters as JSON"
        )
    return value


VariableName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_VARIABLE_NAME_LENGTH),
    AfterValidator(check_variable_name),
]

#: Any JSON value: strings, numbers, booleans, null, objects and arrays (no coercion).
VariableValue = Annotated[
    str | StrictInt | StrictBool | StrictFloat | dict[str, Any] | list[Any] | None,
    BeforeValidator(check_variable_value),
]


class Variable(ObjectModel):
    name: str
    value: Any = None
    tags: list[str] = Field(default_factory=list)


class VariableCreate(ActionModel):
    name: VariableName
    value: VariableValue
    tags: list[str] = Field(default_factory=list)


class VariableUpdate(ActionModel):
    """Fields to change; absent ones are left as they are (``value: null`` sets null)."""

    name: VariableName | None = None
    value: VariableValue = None
    tags: list[str] | None = None


class VariableFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None


class VariableFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None
    like_: str | None = None


class VariableFilterTags(LeafFilter):
    column = "tags"
    operator: Operator = Operator.and_
    all_: list[str] | None = None
    is_null_: bool | None = None


class VariableFilter(CompositeFilter):
    id: VariableFilterId | None = None
    name: VariableFilterName | None = None
    tags: VariableFilterTags | None = None


class VariableSort(str, enum.Enum):
    CREATED_DESC = "CREATED_DESC"
    UPDATED_DESC = "UPDATED_DESC"
    NAME_DESC = "NAME_DESC"
    NAME_ASC = "NAME_ASC"
