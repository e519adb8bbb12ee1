"""HTML views of the prefs app, one module per page family."""
