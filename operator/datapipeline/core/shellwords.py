"""Embedding a value into /bin/sh text as an environment-variable reference, never as code.

A value the Pipeline's author did not write (a PipelineRun's ``spec.values``, a masked parameter from
a Secret) enters a shell command as ``"${NAME}"``: the shell expands it as one word and never parses
it again, so ``; rm -rf /`` or ``$(id)`` stay text. Where it goes depends on the quoting at that point
of the author's command, which :func:`quote_state` reads with the POSIX rules that matter here
(backslash, single and double quotes).
"""

from __future__ import annotations

from enum import Enum


class Quote(Enum):
    NONE = "none"
    SINGLE = "single"
    DOUBLE = "double"


def quote_state(text: str) -> Quote:
    """The quoting in force at the end of ``text`` (an unfinished shell command)."""
    state = Quote.NONE
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
        i += 1
    return state


def env_reference(before: str, name: str) -> str:
    """Shell text that expands to the variable's value as literal text, at the end of ``before``."""
    state = quote_state(before)
    if state is Quote.DOUBLE:
        return "${" + name + "}"
    if state is Quote.SINGLE:
        return "'\"${" + name + "}\"'"  # close the single quotes, expand, reopen
    return '"${' + name + '}"'
