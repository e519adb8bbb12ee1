"""HTML views of the tuning app (admin pages), one module per page family."""
