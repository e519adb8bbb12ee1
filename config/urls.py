from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from prefs.params import IdConverter

# Before the apps' URL modules below are read: every id in a path is `<id:name>`, which never
# matches a number past a 64-bit key (those answer 404, not a database error).
register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script file (?script), not inline,
    # so the page runs under script-src 'self'.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("prefs.api.urls")),
    path("api/v1/", include("tuning.api.urls")),
    path("", include("config.ops_urls")),
    path("", include("prefs.urls")),
    path("", include("tuning.urls")),
]
