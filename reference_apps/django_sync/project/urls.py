from django.contrib import admin
from django.urls import path

from circus import views

urlpatterns = [
    path("health", views.health),
    path("json", views.json_view),
    path("plaintext", views.plaintext),
    path("db", views.db),
    path("queries", views.queries),
    path("updates", views.updates),
    path("fortunes", views.fortunes),
    path("api/colleges", views.colleges),
    path("api/colleges/<str:pk>", views.college),  # non-integer ids answer 404 in the view
    path("api/troupes", views.troupes),
    path("api/troupes/<str:pk>", views.troupe),
    path("slow/db", views.slow_db),
    path("slow/http", views.slow_http),
    path("slow/both", views.slow_both),
    path("slow/fanout", views.slow_fanout),
    path("admin/", admin.site.urls),
]

# DEBUG is off: errors answer JSON like the API instead of Django's HTML pages.
handler400 = views.bad_request
handler404 = views.not_found
handler500 = views.server_error
