"""Outbound notifications: email over SMTP."""
