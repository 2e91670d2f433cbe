"""The web front end: a page served by chatd and a WebSocket speaking JSON
(docs/web.md), on the same core as the line and IRC front ends."""
