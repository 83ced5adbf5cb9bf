"""ExpiryTrack Desktop: expired Indian F&O 1-minute history from Upstox into SQLite."""

__version__ = "0.1.0"
APP_NAME = "ExpiryTrack"
