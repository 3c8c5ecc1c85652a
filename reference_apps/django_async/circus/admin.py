"""The admin over the circus tables (the k6 login flow lands here)."""

from django.contrib import admin

from .models import College, Fortune, Location, Performer, Troupe


@admin.register(College)
class CollegeAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "location", "troupe")
    list_select_related = ("location", "troupe")  # one query for the change list
    search_fields = ("name",)
    raw_id_fields = ("location", "troupe")  # no 100-row <select>s on the change form


@admin.register(Troupe)
class TroupeAdmin(admin.ModelAdmin):
    list_display = ("id", "name")
    search_fields = ("name",)


@admin.register(Performer)
class PerformerAdmin(admin.ModelAdmin):
    list_display = ("id", "stage_name", "kind", "concentration")
    list_filter = ("kind",)
    search_fields = ("stage_name",)


admin.site.register(Location)
admin.site.register(Fortune)
