"""The circus models. Django owns their tables: circus/migrations/0001_initial.py creates
them with the DDL of stackbench's schema.sql (constraint and index names included), and
each model says what that DDL says, so `makemigrations` finds nothing to do."""

from django.db import models


class World(models.Model):
    # Plain integer keys: the rows are seeded with their ids, no sequence hands them out.
    id = models.IntegerField(primary_key=True)
    randomnumber = models.IntegerField()

    class Meta:
        db_table = "world"


class Fortune(models.Model):
    id = models.IntegerField(primary_key=True)
    message = models.CharField(max_length=2048)

    class Meta:
        db_table = "fortune"


class Location(models.Model):
    line_1 = models.CharField(max_length=50)
    line_2 = models.CharField(max_length=50)
    line_3 = models.CharField(max_length=50)
    zipcode = models.CharField(max_length=10)

    class Meta:
        db_table = "location"

    def __str__(self) -> str:
        return f"{self.line_1}, {self.line_3}"


class Performer(models.Model):
    KINDS = (("clown", "clown"), ("acrobat", "acrobat"))
    stage_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=KINDS)
    concentration = models.CharField(max_length=50)

    class Meta:
        db_table = "performer"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["clown", "acrobat"]), name="performer_kind_check"
            )
        ]

    def __str__(self) -> str:
        return self.stage_name


class Troupe(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The join table has no id column, so it is an explicit through model (below).
    members = models.ManyToManyField(Performer, through="TroupeMember", related_name="troupes")

    class Meta:
        db_table = "troupe"

    def __str__(self) -> str:
        return self.name


class TroupeMember(models.Model):
    # Django 5.2 maps the table's (troupe_id, performer_id) primary key as it is.
    pk = models.CompositePrimaryKey("troupe_id", "performer_id")
    # The primary key's index serves troupe_id; performer_id has its own, named below.
    troupe = models.ForeignKey(Troupe, on_delete=models.CASCADE, db_index=False)
    performer = models.ForeignKey(Performer, on_delete=models.CASCADE, db_index=False)

    class Meta:
        db_table = "troupe_member"
        indexes = [models.Index(fields=["performer"], name="troupe_member_performer_idx")]


class College(models.Model):
    name = models.CharField(max_length=100)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, db_index=False)
    troupe = models.ForeignKey(Troupe, on_delete=models.PROTECT, db_index=False)

    class Meta:
        db_table = "college"
        indexes = [
            models.Index(fields=["location"], name="college_location_idx"),
            models.Index(fields=["troupe"], name="college_troupe_idx"),
        ]

    def __str__(self) -> str:
        return self.name
