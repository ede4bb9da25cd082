"""Tests against a real PostgreSQL and SQLite, in process: the state store, its SQL,
migrations, the runner, and the resources jobs use."""
