"""The API's shapes: Pydantic models that validate input and serialize ORM objects."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

# Ids are PostgreSQL ``integer``; a bigger number can only be an unknown id, and must be
# refused here rather than overflow the driver's int4 encoding (a 500).
MAX_ID = 2**31 - 1


class ORMModel(BaseModel):
    # Read attributes of SQLAlchemy objects (``college.location.zipcode``), not dict keys.
    model_config = ConfigDict(from_attributes=True)


class LocationOut(ORMModel):
    id: int
    line_1: str
    line_2: str
    line_3: str
    zipcode: str


class TroupeRef(ORMModel):
    id: int
    name: str


class CollegeOut(ORMModel):
    id: int
    name: str
    location: LocationOut
    troupe: TroupeRef


class PerformerOut(ORMModel):
    id: int
    stage_name: str
    kind: str
    concentration: str


class TroupeOut(ORMModel):
    id: int
    name: str
    members: list[PerformerOut]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


class TroupeIn(BaseModel):
    # Strict types: "7" is not a performer id and 7 is not a name (no silent coercion).
    name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    # Duplicates count once, however many; the 64 KiB body limit bounds the list.
    member_ids: list[Annotated[StrictInt, Field(ge=1, le=MAX_ID)]]

    @field_validator("name")
    @classmethod
    def storable_text(cls, value: str) -> str:
        # JSON can carry a NUL ("\u0000") that PostgreSQL text cannot store: refuse it here.
        # (Lone surrogates such as "\ud800" are already refused by Pydantic's str.)
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value
