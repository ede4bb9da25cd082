"""The status page: its HTML, JSON and metrics, serving it, and a real browser on it."""
