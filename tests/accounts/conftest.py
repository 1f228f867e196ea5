from tests.web.conftest import app, cheap_argon2, client, clock, web_settings

__all__ = ["app", "cheap_argon2", "client", "clock", "web_settings"]
