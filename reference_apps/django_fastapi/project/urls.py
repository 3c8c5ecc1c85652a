"""Django's routes: the contract at the root, the admin at /admin/.

/fastapi/... never reaches these: the ASGI and WSGI entries send it to FastAPI first.
"""

from django.contrib import admin
from django.urls import path

from circus import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health", views.health),
    path("json", views.json_view),
    path("plaintext", views.plaintext),
    path("db", views.db),
    path("queries", views.queries_view),
    path("updates", views.updates),
    path("fortunes", views.fortunes),
    path("api/colleges", views.colleges),
    # <str:pk>, not <int:pk>: a non-integer id gets the contract's JSON 404 from the view.
    path("api/colleges/<str:pk>", views.college),
    path("api/troupes", views.troupes),
    path("api/troupes/<str:pk>", views.troupe),
    path("slow/db", views.slow_db),
    path("slow/http", views.slow_http),
    path("slow/both", views.slow_both),
    path("slow/fanout", views.slow_fanout),
]

handler400 = "circus.views.bad_request"
handler404 = "circus.views.not_found"
handler500 = "circus.views.server_error"
