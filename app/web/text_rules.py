"""Which characters a name or id may hold: no control characters, line breaks or bidi overrides.

Job names and the instance's ids end up in the page, the CSV export, the logs and
`Content-Disposition` headers. A NUL, a CR/LF or a right-to-left override there forges
lines or makes text read differently from what it holds, so such characters are refused.
"""

from __future__ import annotations

import re
import unicodedata

from app.web.errors import ApiError, bad_request
from solver.model import Instance

# C0 and C1 controls, DEL, line and paragraph separators, bidi embeddings, overrides,
# isolates and marks, and lone surrogates (a JSON "\ud800" escape decodes to one).
_ODD = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
# In .ctt text, tab, LF and CR are separators; in a single value they are not allowed either.
ODD_IN_TEXT = re.compile(f"[{_ODD}]")
ODD_IN_VALUE = re.compile(f"[{_ODD}\t\n\r]")


def describe(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`; controls have no Unicode name, so they are called that."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"


def refuse_control_in_text(text: str, where: str) -> None:
    """400 naming the line of the first odd character in .ctt text."""
    found = ODD_IN_TEXT.search(text)
    if found is None:
        return
    # Lines as the .ctt reader counts them (str.splitlines); before the first odd
    # character only LF and CR can break lines, so this agrees with the reader.
    line = len((text[: found.start()] + "x").splitlines())
    raise ApiError(400, "invalid_instance",
                   f"{where}: line {line}: {describe(found.group())} is not allowed in an instance.")


def refuse_control_in_value(value: str, what: str) -> None:
    """400 when a single value (a name, an id) holds an odd character, tab, CR or LF."""
    found = ODD_IN_VALUE.search(value)
    if found is not None:
        raise bad_request(f"{what} holds {describe(found.group())} at character {found.start() + 1}; "
                          "names may not hold control characters, line breaks or bidi overrides.")


def refuse_control_in_instance(instance: Instance) -> None:
    """The same rule for every name and id of an instance, each named by its field path."""
    values = [("instance.name", instance.name)]
    for i, c in enumerate(instance.courses):
        values += [(f"instance.courses[{i}].id", c.id), (f"instance.courses[{i}].teacher", c.teacher)]
    values += [(f"instance.rooms[{i}].id", r.id) for i, r in enumerate(instance.rooms)]
    values += [(f"instance.curricula[{i}].id", q.id) for i, q in enumerate(instance.curricula)]
    for path, value in values:
        refuse_control_in_value(value, f"Field '{path}'")


def clean_name(text: str, limit: int) -> str:
    """`text` with odd characters and runs of white space made one space, cut to `limit` characters."""
    cleaned = " ".join(ODD_IN_VALUE.sub(" ", text).split())[:limit].strip()
    return cleaned or "instance"
