from django.apps import AppConfig


class PrefsConfig(AppConfig):
    name = "prefs"
    verbose_name = "Preferences"
    default_auto_field = "django.db.models.BigAutoField"
