"""The API's shapes: Pydantic models that validate input and serialize ORM objects."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from parameters import MAX_ID


class ORMModel(BaseModel):
    # Read attributes of Tortoise objects (``college.location.zipcode``), not dict keys.
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


class Invalid(BaseModel):
    """One reason a request was refused (FastAPI's own, without the input echoed back)."""

    type: str
    loc: list[str | int]
    msg: str


class Error(BaseModel):
    """Every error the app answers: ``{"detail": ...}``, a sentence or a list of reasons."""

    detail: str | list[Invalid]


class Slept(BaseModel):
    slept: float


class Upstream(BaseModel):
    upstream: dict[str, Any]


class UpstreamAndSlept(BaseModel):
    upstream: dict[str, Any]
    slept: float


class Fanout(BaseModel):
    results: list[dict[str, Any]]
