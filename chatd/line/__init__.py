"""The line protocol front end: what telnet, netcat and chatd-client speak.

docs/protocol.md is its contract; docs/architecture.md shows where it sits.
"""
