"""The web app: pages, JSON API, ICS feeds, and the middleware that guards them."""
