"""Models over the shared tables. `managed = False`: shared_fixtures/schema.sql owns them,
so Django's migrations never create, alter or drop them."""

from django.db import models


class World(models.Model):
    randomnumber = models.IntegerField()

    class Meta:
        managed = False
        db_table = "world"


class Fortune(models.Model):
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
    KINDS = (("clown", "clown"), ("acrobat", "acrobat"))
    stage_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=KINDS)
    concentration = models.CharField(max_length=50)

    class Meta:
        managed = False
        db_table = "performer"

    def __str__(self) -> str:
        return self.stage_name


class Troupe(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The join table has no id column, so it is an explicit through model (below).
    members = models.ManyToManyField(Performer, through="TroupeMember", related_name="troupes")

    class Meta:
        managed = False
        db_table = "troupe"

    def __str__(self) -> str:
        return self.name


class TroupeMember(models.Model):
    # Django 5.2 maps the table's (troupe_id, performer_id) primary key as it is.
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
