"""Upcoming contests: storage, merging fresh fetches, reading, calendars."""
