"""chatd: a small moderated chat-room daemon on Twisted."""
