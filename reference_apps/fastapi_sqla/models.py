"""ORM classes mapped onto the shared tables.

The tables belong to the benchmark's schema.sql: nothing here creates or alters them
(no ``create_all``, no migrations); the classes only describe what is already there.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"

    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"

    id: Mapped[int] = mapped_column(primary_key=True)
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

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id"))
    troupe_id: Mapped[int] = mapped_column(ForeignKey("troupe.id"))
    location: Mapped[Location] = relationship(lazy="raise")
    troupe: Mapped[Troupe] = relationship(lazy="raise")
