"""Tests that need nothing but the package: no database server, no long-running process."""
