"""Columns a grapheme cluster takes: as wcwidth says, or as this terminal draws it.

prompt_toolkit lays out one code point per cell, with wcwidth's width for
each, and merges a zero-width one into the cell before it.  A cluster of
several visible code points (👍🏽, 👨‍👩‍👧, ❤️) so takes the sum of their
widths, where wcwidth (wcwidth.width) and most terminals give it 2 columns,
and the cursor drifts.  Terminals differ, though: tmux 3.3 joins 👨‍👩‍👧 into
2 columns but draws 👍🏽 in 4, xterm draws both as the sum.  So before the
screen is taken, probe() prints one cluster of each kind at the start of
the line and asks the terminal where the cursor went (CPR); a kind the
terminal draws as the sum is left to prompt_toolkit's own widths, the others
get wcwidth's width.  A terminal that does not answer gets wcwidth's.

mark_clusters() styles each cluster that needs it: its first code point
`cluster-wN` (N columns for the whole cluster), the rest `cluster-tail`.
use_grapheme_widths() wraps, once, the factory of the screen's characters so
that those get these widths: the cluster becomes one cell of N columns.
prompt_toolkit has no seam for this; without the private cache it looks
characters up in, it keeps its own widths.
"""

from __future__ import annotations

import os
import re
import select
import time

from prompt_toolkit.layout import screen
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from wcwidth import iter_graphemes, wcwidth, width

PROBE_TIMEOUT = 0.5
# One cluster of each kind; the terminal joins the kind if it draws the cluster
# in wcwidth.width columns.
KINDS = {
    "zwj": "\U0001F468\u200d\U0001F469\u200d\U0001F467",  # 👨‍👩‍👧
    "modifier": "\U0001F44D\U0001F3FD",  # 👍🏽
    "vs16": "\u2764\ufe0f",  # ❤️
}
_MODIFIERS = re.compile("[\U0001F3FB-\U0001F3FF]")
_CPR = re.compile(rb"\x1b\[(\d+);(\d+)R")
_CLUSTER_WIDTH = re.compile(r"cluster-w(\d)")

joined = {kind: True for kind in KINDS}  # what the terminal joins; probe() sets it


def probe(fd_in: int, fd_out: int) -> None:
    """Ask the terminal (in raw mode) how wide it draws each kind of cluster."""
    ask = b"".join(b"\r" + sample.encode() + b"\x1b[6n" for sample in KINDS.values())
    os.write(fd_out, ask + b"\r\x1b[K")
    answers: list[int] = []
    data, deadline = b"", time.monotonic() + PROBE_TIMEOUT
    while len(answers) < len(KINDS):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd_in], [], [], left)[0]:
            return  # no answer: keep wcwidth's widths
        chunk = os.read(fd_in, 1024)
        if not chunk:
            return
        data += chunk
        answers = [int(col) - 1 for _, col in _CPR.findall(data)]
    for (kind, sample), columns in zip(KINDS.items(), answers[:len(KINDS)], strict=True):
        joined[kind] = columns == width(sample)


def cluster_width(cluster: str) -> int | None:
    """Columns for a cluster drawn as one; None where the terminal draws it
    as its code points (prompt_toolkit's widths are right then)."""
    if ("\u200d" in cluster and not joined["zwj"]) or \
            (not joined["modifier"] and _MODIFIERS.search(cluster)) or \
            ("\ufe0f" in cluster and not joined["vs16"]):
        return None
    whole = width(cluster)
    if whole == sum(max(0, wcwidth(c)) for c in cluster) or whole not in (1, 2):
        return None
    return whole


def mark_clusters(fragments: list[tuple]) -> list[tuple]:
    """fragments with each multi-code-point cluster styled for its width."""
    out: list[tuple] = []
    for style, text, *rest in fragments:
        if text.isascii():
            out.append((style, text, *rest))
            continue
        for cluster in iter_graphemes(text):
            whole = cluster_width(cluster) if len(cluster) > 1 else None
            if whole is None:
                out.append((style, cluster, *rest))
            else:
                out.append((f"{style} class:cluster-w{whole}", cluster[0], *rest))
                out.append((f"{style} class:cluster-tail", cluster[1:], *rest))
    return out


class GraphemeWidths(Processor):
    """The input line's clusters, marked for their widths."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation(mark_clusters(ti.fragments))


def use_grapheme_widths() -> None:
    """Make the screen honour mark_clusters()' styles (see above)."""
    cache = getattr(screen, "_CHAR_CACHE", None)
    plain = getattr(cache, "get_value", None)
    if plain is None or getattr(plain, "graphemes", False):
        return

    def char(text: str, style: str) -> screen.Char:
        made = plain(text, style)
        if "cluster-tail" in style:
            made.width = 0
        elif "cluster-w" in style and (m := _CLUSTER_WIDTH.search(style)) is not None:
            made.width = int(m.group(1))
        return made

    char.graphemes = True
    cache.get_value = char
    cache.clear()
