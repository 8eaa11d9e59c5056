"""``settings_imports``: an import's settings on their way to auth, as an outbox event."""

from momentum_libs.outbox import OUTBOX_INDEX, OwnedDocument
from momentum_libs.timestamps import UtcDatetime


class SettingsImport(OwnedDocument):
    """The ``user.settings_imported`` event of one import, in the outbox of a document of
    its own (tracking holds no document of the account's settings to carry it). Written
    as a tombstone: the relay removes it once the event is out, so nothing accumulates."""

    created_at: UtcDatetime

    class Settings:
        name = "settings_imports"
        indexes = [OUTBOX_INDEX]
