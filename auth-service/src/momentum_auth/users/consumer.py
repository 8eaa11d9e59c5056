"""What auth reads from the event stream: the settings an import asks it to apply.

tracking's import cannot write the account's settings (auth owns them, and services
never share a database or import each other's code): it writes a
``user.settings_imported`` event in its outbox, and this handler applies it through the
path of a profile change, so the usual ``user.updated`` follows. Every other event is
not auth's and is acknowledged untouched.
"""

from momentum_libs.events import Envelope, EventType, SettingsImportedPayload

from momentum_auth.users.service import UserService


class ImportedSettingsHandler:
    """The StreamConsumer handler of auth's consumer group."""

    def __init__(self, users: UserService) -> None:
        self._users = users

    async def __call__(self, event: Envelope) -> None:
        if event.type is not EventType.USER_SETTINGS_IMPORTED:
            return
        payload = event.typed_payload()  # an unknown version raises: dead-lettered
        assert isinstance(payload, SettingsImportedPayload)
        await self._users.apply_imported(event.user_id, payload)
