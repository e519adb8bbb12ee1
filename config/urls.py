from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("prefs.api.urls")),
    path("api/v1/", include("tuning.api.urls")),
    path("", include("config.ops_urls")),
    path("", include("prefs.urls")),
    path("", include("tuning.urls")),
]
