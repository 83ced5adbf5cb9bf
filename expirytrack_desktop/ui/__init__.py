"""The window: Qt widgets, pages and their adapter to the engine (Qt enters through qt.py)."""
