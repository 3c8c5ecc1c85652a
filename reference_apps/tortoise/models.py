"""Tortoise models mapped onto the shared tables.

The tables belong to the benchmark's schema.sql: ``Meta.table`` names each one, and the
app never generates schemas (no ``generate_schemas``), it only describes what is there.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class World(Model):
    # generated=False: ids are the seed's, not a sequence's.
    id = fields.IntField(primary_key=True, generated=False)
    randomnumber = fields.IntField()

    class Meta:
        table = "world"


class Fortune(Model):
    id = fields.IntField(primary_key=True, generated=False)
    message = fields.CharField(max_length=2048)

    class Meta:
        table = "fortune"


class Location(Model):
    id = fields.IntField(primary_key=True)
    line_1 = fields.CharField(max_length=50)
    line_2 = fields.CharField(max_length=50)
    line_3 = fields.CharField(max_length=50)
    zipcode = fields.CharField(max_length=10)

    class Meta:
        table = "location"


class Performer(Model):
    id = fields.IntField(primary_key=True)
    stage_name = fields.CharField(max_length=100)
    kind = fields.CharField(max_length=10)
    concentration = fields.CharField(max_length=50)

    class Meta:
        table = "performer"


class Troupe(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    # troupe_member is a bare (troupe_id, performer_id) table with a composite key, which
    # Tortoise models as the "through" table of a many-to-many field, not as a model.
    members: fields.ManyToManyRelation[Performer] = fields.ManyToManyField(
        "circus.Performer",
        related_name="troupes",
        through="troupe_member",
        backward_key="troupe_id",  # the column pointing at this model (Troupe)
        forward_key="performer_id",  # the column pointing at the related model (Performer)
    )

    class Meta:
        table = "troupe"


class College(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # Columns location_id and troupe_id; NO_ACTION matches the schema's plain REFERENCES.
    location: fields.ForeignKeyRelation[Location] = fields.ForeignKeyField(
        "circus.Location", related_name="colleges", on_delete=fields.NO_ACTION
    )
    troupe: fields.ForeignKeyRelation[Troupe] = fields.ForeignKeyField(
        "circus.Troupe", related_name="colleges", on_delete=fields.NO_ACTION
    )

    class Meta:
        table = "college"
