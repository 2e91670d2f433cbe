"""twistd plugin: `twistd chatd`. All wiring lives in chatd.tap."""

from twisted.application.service import ServiceMaker

chatd = ServiceMaker(
    "chatd", "chatd.tap", "A small moderated chat-room daemon.", "chatd"
)
