"""Headless command line: the same engine as the window, scriptable for schedulers."""
