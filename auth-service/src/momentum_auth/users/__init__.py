"""/users/me and the accounts behind /auth/register and /auth/me; their events."""
