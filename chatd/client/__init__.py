"""chatd-client: the bundled line client, for people at a terminal and for bots.

One session (session.Session) speaks the wire protocol of docs/protocol.md
and hands every server line, made safe for a terminal, to a front end.
There are two front ends, chosen by whether stdin and stdout are a terminal:

* tui.TerminalFrontEnd: line editing, history, colours, incoming lines
  printed above the line being typed.
* pipe.PipeFrontEnd: every stdin line is sent as it is once logged in,
  every server line is printed as it came, one per line; at end of input
  the client sends /quit.  Without --user, the first stdin line is the
  username.

The modules depend one way: cli (arguments, main) imports session, tui and
pipe; tui and pipe import session; session imports none of them.  None
imports the server's modules but the line protocol's codec, chatd.line.codec
(the one definition of what a line looks like, shared with the server).
This file imports nothing, so that importing one module does not load the
others.

Why Twisted and not prompt_toolkit: the server is Twisted, the client adds
no dependency, and one reactor drives the socket, TLS, stdin and signals
without threads.  The terminal side uses twisted.conch.insults (the key
decoder under twisted.conch.recvline); see chatd.client.tui for why the
editing itself is ours rather than RecvLine's.
"""
