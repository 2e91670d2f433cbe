"""chatd: a small moderated chat-room daemon on Twisted."""

# The one place the version is written: setup.cfg reads it (attr:), and
# `twistd chatd --version` prints it.
__version__ = "0.1.0"
