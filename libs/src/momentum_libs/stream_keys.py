"""Names of the keys kept beside a stream, in its Redis Cluster slot.

A Lua script or a MULTI may only touch keys of one slot. Redis Cluster hashes a key's
first non-empty ``{…}`` (its hash tag), else the whole key; so a key named after the
stream with the stream's hash tag first lands in the stream's slot, whether the stream
name carries a tag (``{momentum.events}.p3``) or not (``momentum.events``).
"""


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis Cluster hashes: its first non-empty ``{…}``, else all of it."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def has_hash_tag(key: str) -> bool:
    return hash_tag(key) != key


def beside(stream: str, suffix: str) -> str:
    """A key in ``stream``'s slot, named ``stream`` + ``suffix`` (with a tag added if the
    stream has none)."""
    if has_hash_tag(stream):
        return f"{stream}{suffix}"  # the stream's own tag comes first: it decides the slot
    return f"{{{stream}}}{suffix}"
