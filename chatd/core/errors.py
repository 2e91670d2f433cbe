"""What the core refuses: small domain errors a front end shows to the person.

The server, its rooms and its moderation raise them; a front end shows
str(error) as it likes (the line protocol as one "! " line) and keeps the connection.
"""


class RoomError(Exception):
    """A refusal; str(error) is the text shown to the person after '! '."""


class InvalidName(RoomError):
    pass


class NameTaken(RoomError):
    pass


class Banned(RoomError):
    pass


class NoSuchUser(RoomError):
    pass


class PermissionDenied(RoomError):
    def __init__(self, text: str = "permission denied"):
        super().__init__(text)


class NotAllowed(RoomError):
    pass


class Muted(RoomError):
    def __init__(self, text: str = "you are muted"):
        super().__init__(text)


class NoSuchRoom(RoomError):
    pass


class Unavailable(RoomError):
    """The cluster cannot be reached: a name cannot be claimed, nor an
    admin's action made durable, on every node (chatd.cluster)."""

    def __init__(self, text: str = "cluster unavailable: try again in a moment"):
        super().__init__(text)
