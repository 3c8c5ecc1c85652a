"""ORM classes and the tables they map.

Alembic creates the tables (migrations/versions/), and this metadata describes them
constraint by constraint, so ``alembic check`` finds nothing to do. The names are
PostgreSQL's own defaults (``world_pkey``, ``troupe_name_key``, ...): the naming convention
below gives them to every constraint the metadata declares.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "pk": "%(table_name)s_pkey",
            "fk": "%(table_name)s_%(column_0_name)s_fkey",
            "uq": "%(table_name)s_%(column_0_name)s_key",
            "ck": "%(table_name)s_%(constraint_name)s_check",
        }
    )


class World(Base):
    __tablename__ = "world"

    # Plain integer keys: the rows are seeded with their ids, no sequence hands them out.
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    message: Mapped[str] = mapped_column(String(2048))


class Location(Base):
    __tablename__ = "location"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_1: Mapped[str] = mapped_column(String(50))
    line_2: Mapped[str] = mapped_column(String(50))
    line_3: Mapped[str] = mapped_column(String(50))
    zipcode: Mapped[str] = mapped_column(String(10))


class Performer(Base):
    __tablename__ = "performer"
    __table_args__ = (CheckConstraint("kind IN ('clown', 'acrobat')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stage_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    concentration: Mapped[str] = mapped_column(String(50))


# The association table has no columns of its own beyond the two keys, so it is a plain
# Table used as ``secondary`` rather than a mapped class.
troupe_member = Table(
    "troupe_member",
    Base.metadata,
    Column("troupe_id", Integer, ForeignKey("troupe.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "performer_id", Integer, ForeignKey("performer.id", ondelete="CASCADE"), primary_key=True
    ),
    # The primary key serves lookups by troupe; members are also looked up by performer.
    Index("troupe_member_performer_idx", "performer_id"),
)


class Troupe(Base):
    __tablename__ = "troupe"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # lazy="raise": under asyncio an implicit lazy load cannot run (it would need to await),
    # so every query states how it loads members (selectinload) and a forgotten one fails
    # loudly instead of turning into one query per row.
    members: Mapped[list[Performer]] = relationship(
        secondary=troupe_member, order_by=Performer.id, lazy="raise"
    )


class College(Base):
    __tablename__ = "college"
    __table_args__ = (
        Index("college_location_idx", "location_id"),
        Index("college_troupe_idx", "troupe_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"))
    troupe_id: Mapped[int] = mapped_column(ForeignKey("troupe.id"))
    location: Mapped[Location] = relationship(lazy="raise")
    troupe: Mapped[Troupe] = relationship(lazy="raise")
