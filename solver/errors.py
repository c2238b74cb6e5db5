"""The one error type for bad instance or solution input."""

from __future__ import annotations

_SHOWN_CHARS = 40


class InstanceError(ValueError):
    """Bad input, located by `line` (text formats) or `field` (a JSON path such as
    `courses[3].lectures`); `str()` is one readable line for the user."""

    def __init__(self, message: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field

    def __str__(self) -> str:
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        if self.field:
            return f"{self.field}: {self.message}"
        return self.message


def shown(value: object) -> str:
    """A user-supplied value quoted for a message, cut short so the message stays one line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 4] + "...'"


def named(value: str) -> str:
    """An id as-is when it is one short word (the usual case), else quoted like `shown`."""
    return value if value and len(value) <= _SHOWN_CHARS and not any(ch.isspace() for ch in value) else shown(value)


def counted(n: int, noun: str) -> str:
    """`counted(1, "lecture")` is "1 lecture", `counted(3, "lecture")` is "3 lectures"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
