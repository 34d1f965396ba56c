"""Text made safe to print: what a terminal would act on rather than show becomes a visible escape.

A value the CLI prints may come from elsewhere (an exception's text, a reason
in the bridge's outbox): ESC in it would start an escape sequence (clear the
screen, recolour, set the window title), NUL, BEL or a C1 control would be
acted on, and U+2028/U+2029 break lines where a pipe's reader expects none.
Each is printed as a visible escape (``\\x1b``, ``\\u2028``) rather than
dropped or turned into a space, so that the value is seen changed, not
silently altered.
"""

from __future__ import annotations

import re

from rich.text import Span, Text

# What a terminal would act on rather than show: Unicode's control characters (Cc: C0, DEL and C1) but TAB and
# LF, and the line and paragraph separators (Zl, Zp).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_char(char: str) -> str:
    return f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"


def visible(value: str) -> str:
    """``value`` safe to print: a carriage return (CR LF, or CR alone) becomes a line feed, and every other
    control character but TAB and LF, and U+2028 and U+2029, a visible escape (ESC is ``\\x1b``)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub(lambda m: _escape_char(m.group()), value)


def visible_text(text: Text) -> Text:
    """:func:`visible` for rich Text, each escape in the style of the character it stands for."""
    plain = text.plain
    if not _UNSAFE.search(plain):
        return text
    out, last = text.blank_copy(), 0
    for m in _UNSAFE.finditer(plain):
        if m.start() > last:
            out.append_text(text[last : m.start()])
        char, escaped = text[m.start() : m.end()], _escape_char(m.group())
        out.append_text(Text(escaped, style=char.style, spans=[Span(0, len(escaped), s.style) for s in char.spans]))
        last = m.end()
    if last < len(plain):
        out.append_text(text[last:])
    return out
