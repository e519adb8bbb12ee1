"""Writes of the prefs app. Views, API endpoints, commands and tasks call these."""
