"""cpsync: programming contests from seven platforms, kept current and pushed into calendars."""

__version__ = "0.1.0"
