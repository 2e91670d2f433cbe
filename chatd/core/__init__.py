"""The core of chatd: rooms, events, login, limits and storage.

The rule that lets several front ends share it: front ends (chatd.line,
and later IRC and the web) import the core; the core imports no front end
and knows no wire format.  docs/architecture.md has the map.
"""
