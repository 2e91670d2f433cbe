"""What the room refuses: small domain errors the front end shows as "! " lines.

The room and its moderation raise them; chatd.line.protocol and chatd.line.commands
turn each into one line, str(error) after "! ", and keep the connection.
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
