"""The signing key and its JWKS: ``service.py`` loads it, ``router.py`` serves the JWKS.

No ``repository.py``, ``models.py`` or ``schemas.py``: the key is in the settings or a
file (never in MongoDB), and the JWKS is RFC 7517's JSON, built by the key itself.
"""
