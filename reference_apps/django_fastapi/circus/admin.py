"""The admin that benchmark-django-fastapi's k6 flow logs into (read-mostly views)."""

from django.contrib import admin

from circus.models import College, Fortune, Location, Performer, Troupe


@admin.register(College)
class CollegeAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "location", "troupe")
    list_select_related = ("location", "troupe")
    raw_id_fields = ("location", "troupe")
    search_fields = ("name",)


@admin.register(Troupe)
class TroupeAdmin(admin.ModelAdmin):
    list_display = ("id", "name")
    search_fields = ("name",)


@admin.register(Performer)
class PerformerAdmin(admin.ModelAdmin):
    list_display = ("id", "stage_name", "kind", "concentration")
    list_filter = ("kind",)
    search_fields = ("stage_name",)


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("id", "line_1", "line_2", "line_3", "zipcode")


@admin.register(Fortune)
class FortuneAdmin(admin.ModelAdmin):
    list_display = ("id", "message")
