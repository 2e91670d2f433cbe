"""chatd-client: the bundled line client, for people at a terminal and for bots.

One session (session.Session) speaks the wire protocol of docs/protocol.md
and hands every server line, made safe for a terminal, to a front end.
There are two front ends, chosen by whether stdin and stdout are a terminal:

* tui.TerminalFrontEnd (needs prompt_toolkit, the `chatd[tui]` extra): an
  input line with editing, history, search and completion, a status line,
  colours, incoming lines printed above.  Without prompt_toolkit a terminal
  gets the pipe front end and a one-line hint.
* pipe.PipeFrontEnd: every stdin line is sent as it is once logged in,
  every server line is printed as it came, one per line; at end of input
  the client sends /quit.  Without --user, the first stdin line is the
  username.

Both say their lines through the session's Pacer (pacing), under the
server's flood limit, which the session asks with /limits after login; the
session follows the room in a RoomView (roomview).

The modules depend one way: cli (arguments, main) imports session, tui and
pipe; tui imports session, style, editing and widths; editing imports
widths; session imports pacing and roomview; none imports a front end's
module from below.  None imports the server's modules but the line
protocol's codec, chatd.line.codec (the one definition of what a line looks
like, shared with the server).  This file imports nothing, so that
importing one module does not load the others.

Why prompt_toolkit on Twisted: the server is Twisted, and one reactor still
drives the socket, TLS, stdin and signals without threads; prompt_toolkit
runs on asyncio, so at a terminal the reactor is Twisted's asyncio reactor
and both share one loop.  Line editing, wide characters and completion are
what a well-kept library does better than a hand-written editor.
"""
