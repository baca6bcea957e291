"""Embedding a value into /bin/sh text as an environment-variable reference, never as code.

A value the Pipeline's author did not write (a PipelineRun's ``spec.values``, a masked parameter from
a Secret) enters a shell command as ``"${NAME}"``: the shell expands it as one word and never parses
it again, so ``; rm -rf /`` or ``$(id)`` stay text. Where it goes depends on the quoting at that point
of the author's command, which :func:`quote_state` reads with the POSIX rules that matter here
(backslash, single and double quotes, comments, here-documents).

Values used in arithmetic (``$(( ))``), with ``eval`` or passed to ``bash -c`` are parsed again by the
shell: there a run-supplied value must be an Integer or limited by a pattern (docs/security.md).
"""

from __future__ import annotations

import re
from enum import Enum


class Quote(Enum):
    NONE = "none"
    SINGLE = "single"
    DOUBLE = "double"
    HEREDOC = "heredoc"  # inside a here-document's body: $VAR expands, quotes are literal text


_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([A-Za-z0-9_]+))")
_COMMENT_AFTER = " \t\n;&|()"


def quote_state(text: str) -> Quote:
    """The quoting in force at the end of ``text`` (an unfinished shell command)."""
    state = Quote.NONE
    pending: list[tuple[str, bool]] = []  # here-documents opened on this line: (delimiter, strip tabs)
    i = 0
    while i < len(text):
        char = text[i]
        if state is Quote.SINGLE:
            if char == "'":
                state = Quote.NONE
        elif char == "\\":
            i += 1  # the next character is literal (in double quotes too, for the ones that matter)
        elif state is Quote.DOUBLE:
            if char == '"':
                state = Quote.NONE
        elif char == "'":
            state = Quote.SINGLE
        elif char == '"':
            state = Quote.DOUBLE
        elif char == "#" and (i == 0 or text[i - 1] in _COMMENT_AFTER):
            end = text.find("\n", i)
            if end < 0:
                return Quote.NONE  # in a comment: whatever follows is not run
            i = end - 1
        elif char == "<" and text[i - 1:i] != "<" and text[i + 2:i + 3] != "<" and (match := _HEREDOC.match(text, i)):
            pending.append((match.group(2) or match.group(3) or match.group(4) or "", bool(match.group(1))))
            i = match.end() - 1
        elif char == "\n" and pending:
            body_end = _skip_heredocs(text, i + 1, pending)
            if body_end is None:
                return Quote.HEREDOC
            pending, i = [], body_end - 1
        i += 1
    return state


def _skip_heredocs(text: str, i: int, pending: list[tuple[str, bool]]) -> int | None:
    """Where the here-documents' bodies that start at ``i`` end, or None when ``text`` ends inside one."""
    for delimiter, strip_tabs in pending:
        while True:
            end = text.find("\n", i)
            if end < 0:
                return None
            line = text[i:end]
            i = end + 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
    return i


def env_reference(before: str, name: str) -> str:
    """Shell text that expands to the variable's value as literal text, at the end of ``before``."""
    state = quote_state(before)
    if state in (Quote.DOUBLE, Quote.HEREDOC):
        return "${" + name + "}"
    if state is Quote.SINGLE:
        return "'\"${" + name + "}\"'"  # close the single quotes, expand, reopen
    return '"${' + name + '}"'
