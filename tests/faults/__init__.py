"""Faults with real processes: kills, signals, races, hung jobs, restarted and private
PostgreSQL clusters, a wrong wall clock, daemons. The slow ones are marked ``slow``."""
