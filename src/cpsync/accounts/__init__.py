"""Accounts: users, local and Google sign-in, sessions, CSRF, feed tokens, secrets at rest."""
