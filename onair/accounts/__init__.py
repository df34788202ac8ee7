"""Sign-up, login, sessions and roles."""
