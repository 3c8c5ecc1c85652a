"""Models over the shared tables (shared_fixtures/schema.sql owns them: managed = False).

Django creates, alters and drops none of these; `migrate` only builds Django's own
contrib tables. Column names match the schema, so no db_column is needed.
"""

from __future__ import annotations

from django.db import models


class World(models.Model):
    id = models.IntegerField(primary_key=True)
    randomnumber = models.IntegerField()

    class Meta:
        managed = False
        db_table = "world"


class Fortune(models.Model):
    id = models.IntegerField(primary_key=True)
    message = models.CharField(max_length=2048)

    class Meta:
        managed = False
        db_table = "fortune"


class Location(models.Model):
    line_1 = models.CharField(max_length=50)
    line_2 = models.CharField(max_length=50)
    line_3 = models.CharField(max_length=50)
    zipcode = models.CharField(max_length=10)

    class Meta:
        managed = False
        db_table = "location"

    def __str__(self) -> str:
        return f"{self.line_1}, {self.line_3}"


class Performer(models.Model):
    KIND_CHOICES = (("clown", "clown"), ("acrobat", "acrobat"))

    stage_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    concentration = models.CharField(max_length=50)

    class Meta:
        managed = False
        db_table = "performer"

    def __str__(self) -> str:
        return self.stage_name


class Troupe(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The join table is the schema's troupe_member, whose primary key is the pair.
    members = models.ManyToManyField(Performer, through="TroupeMember", related_name="troupes")

    class Meta:
        managed = False
        db_table = "troupe"

    def __str__(self) -> str:
        return self.name


class TroupeMember(models.Model):
    # Django 5.2's CompositePrimaryKey maps the table's PRIMARY KEY (troupe_id, performer_id).
    pk = models.CompositePrimaryKey("troupe_id", "performer_id")
    troupe = models.ForeignKey(Troupe, on_delete=models.CASCADE)
    performer = models.ForeignKey(Performer, on_delete=models.CASCADE)

    class Meta:
        managed = False
        db_table = "troupe_member"


class College(models.Model):
    name = models.CharField(max_length=100)
    location = models.ForeignKey(Location, on_delete=models.PROTECT)
    troupe = models.ForeignKey(Troupe, on_delete=models.PROTECT)

    class Meta:
        managed = False
        db_table = "college"

    def __str__(self) -> str:
        return self.name
