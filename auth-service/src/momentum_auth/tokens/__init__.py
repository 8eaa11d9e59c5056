"""/auth: token pairs issued at login, rotated on refresh, revoked at logout; the sessions
and refresh tokens behind them, and the login throttle (``throttle.py``)."""
