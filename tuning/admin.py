from django.contrib import admin

from tuning.models import Adapter, BaseModel


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "source", "created_at"]


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "base_model", "project", "parent", "created_at"]
    raw_id_fields = ["parent"]
