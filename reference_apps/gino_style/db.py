"""The shared tables as SQLAlchemy Core, and every statement compiled once for asyncpg.

This is what GINO did: SQLAlchemy builds the SQL, asyncpg runs it. Each statement is
compiled at import to asyncpg's ``$1`` form, so a request only binds values; asyncpg
prepares and caches the statement per connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

# The tables as Alembic creates them (migrations/versions/), constraint for constraint, so
# `alembic check` finds nothing to do. The naming convention gives every constraint the
# name PostgreSQL itself would (world_pkey, troupe_name_key, college_troupe_id_fkey, ...).
metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "uq": "%(table_name)s_%(column_0_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s_check",
    }
)

world = Table(
    "world",
    metadata,
    # Plain integer keys: the rows are seeded with their ids, no sequence hands them out.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("randomnumber", Integer, nullable=False),
)
fortune = Table(
    "fortune",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("message", String(2048), nullable=False),
)
location = Table(
    "location",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("line_1", String(50), nullable=False),
    Column("line_2", String(50), nullable=False),
    Column("line_3", String(50), nullable=False),
    Column("zipcode", String(10), nullable=False),
)
performer = Table(
    "performer",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stage_name", String(100), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("concentration", String(50), nullable=False),
    CheckConstraint("kind IN ('clown', 'acrobat')", name="kind"),
)
troupe = Table(
    "troupe",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
)
troupe_member = Table(
    "troupe_member",
    metadata,
    Column("troupe_id", ForeignKey("troupe.id", ondelete="CASCADE"), primary_key=True),
    Column("performer_id", ForeignKey("performer.id", ondelete="CASCADE"), primary_key=True),
    # The primary key serves lookups by troupe; members are also looked up by performer.
    Index("troupe_member_performer_idx", "performer_id"),
)
college = Table(
    "college",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("location_id", ForeignKey("location.id"), nullable=False),
    Column("troupe_id", ForeignKey("troupe.id"), nullable=False),
    Index("college_location_idx", "location_id"),
    Index("college_troupe_idx", "troupe_id"),
)


@dataclass(frozen=True)
class Query:
    """A compiled statement: SQL text with $n placeholders and its parameter names in order."""

    sql: str
    names: tuple[str, ...]

    def args(self, **values: object) -> list[object]:
        return [values[name] for name in self.names]


def compiled(statement: ClauseElement) -> Query:
    result = statement.compile(dialect=asyncpg_dialect())
    return Query(str(result), tuple(result.positiontup or ()))


_ids = bindparam("ids", type_=ARRAY(Integer))
_college_columns = [
    college.c.id,
    college.c.name,
    location.c.id.label("location_id"),
    location.c.line_1,
    location.c.line_2,
    location.c.line_3,
    location.c.zipcode,
    troupe.c.id.label("troupe_id"),
    troupe.c.name.label("troupe_name"),
]
_college_join = college.join(location, location.c.id == college.c.location_id).join(
    troupe, troupe.c.id == college.c.troupe_id
)
_members = (
    select(
        troupe_member.c.troupe_id,
        performer.c.id,
        performer.c.stage_name,
        performer.c.kind,
        performer.c.concentration,
    )
    .join(performer, performer.c.id == troupe_member.c.performer_id)
    .order_by(troupe_member.c.troupe_id, performer.c.id)
)

WORLD_BY_ID = compiled(
    select(world.c.id, world.c.randomnumber).where(world.c.id == bindparam("id"))
)
UPDATE_WORLD = compiled(
    update(world).where(world.c.id == bindparam("id")).values(randomnumber=bindparam("number"))
)
ALL_FORTUNES = compiled(select(fortune.c.id, fortune.c.message))
COUNT_COLLEGES = compiled(select(func.count()).select_from(college))
# One join brings each college's location and troupe: no query per row.
COLLEGE_PAGE = compiled(
    select(*_college_columns)
    .select_from(_college_join)
    .order_by(college.c.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
COLLEGE_BY_ID = compiled(
    select(*_college_columns).select_from(_college_join).where(college.c.id == bindparam("id"))
)
COUNT_TROUPES = compiled(select(func.count()).select_from(troupe))
TROUPE_PAGE = compiled(
    select(troupe.c.id, troupe.c.name)
    .order_by(troupe.c.id)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
TROUPE_BY_ID = compiled(select(troupe.c.id, troupe.c.name).where(troupe.c.id == bindparam("id")))
# The members of a whole page in one statement (what an ORM's prefetch does).
MEMBERS_OF = compiled(_members.where(troupe_member.c.troupe_id == func.any(_ids)))
KNOWN_PERFORMERS = compiled(
    select(func.count()).select_from(performer).where(performer.c.id == func.any(_ids))
)
INSERT_TROUPE = compiled(insert(troupe).values(name=bindparam("name")).returning(troupe.c.id))
INSERT_MEMBERS = compiled(
    insert(troupe_member).from_select(
        ["troupe_id", "performer_id"],
        select(bindparam("troupe_id", type_=Integer), func.unnest(_ids)),
    )
)
SLEEP = compiled(select(func.pg_sleep(bindparam("seconds"))))
