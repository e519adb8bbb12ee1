from django.apps import AppConfig


class PrefsConfig(AppConfig):
    name = "prefs"
    verbose_name = "Preferences"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from prefs import login_throttle

        # Every login form counts failures and clears them the same way (prefs/login_throttle.py).
        user_login_failed.connect(login_throttle.on_login_failed, dispatch_uid="prefloop-login-failed")
        user_logged_in.connect(login_throttle.on_logged_in, dispatch_uid="prefloop-logged-in")
