"""The IRC front end: irssi, WeeChat and HexChat users in chatd's rooms.

Room ROOM is channel #ROOM.  docs/irc.md says what is supported and how
chatd's concepts map to IRC; docs/architecture.md where it sits.
"""
