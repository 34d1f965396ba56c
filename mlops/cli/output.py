"""Shared output of the CLI: JSON for scripts, and for people a layout that never cuts a value.

``--json`` is the machine format. Without it, what a command prints depends on
where its standard output goes (rich's ``Console.is_terminal``; ``FORCE_COLOR``
or ``TTY_COMPATIBLE=1`` make rich treat a pipe as a terminal):

- a terminal, as wide as rich's ``Console.width`` says (``COLUMNS`` if set): a
  table (:func:`show_table`, :func:`show_fields`) when it fits without folding an
  identifier column (names, digests, transaction ids, paths); prose columns
  (reasons) wrap at spaces. When it does not fit, one block per record:
  ``key: value`` lines, a blank line between records, a value too long for its
  line on its own indented line(s). Other lines wrap at spaces only: a word (a
  URI, a path) is never broken; one longer than the terminal is printed whole
  (:class:`CliConsole`). A terminal narrower than :data:`MIN_WIDTH` columns
  (``COLUMNS=0``) is laid out as that wide. Colour, spinners;
- no terminal (a pipe, a file): plain text for ``grep``, ``cut`` and ``awk``: no
  colour, no box drawing, no spinner, no line wrapping. A table is one header
  line, then one line per record, fields separated by a TAB (a TAB or newline in
  a value becomes a space); its title is left out, and lines after it that are
  not records (:func:`show_note`) start with ``# ``. A key/value view is
  ``key<TAB>value`` lines.

In both, a control character in a value (ESC, any other of Unicode's Cc but
TAB and line feed) or a line or paragraph separator (U+2028, U+2029) is
printed as a visible escape, ``\\x1b`` for ESC (:func:`visible`): a terminal
would act on it, and a value that came from elsewhere (an exception's text)
must not move the cursor or recolour the screen. A carriage return is a line
break.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelledger.mlops.cli.visible_text import visible, visible_text


def _word_wrap(text: Text, width: int, hang: int = 2) -> Text:
    """``text`` broken at spaces into lines that fit ``width`` terminal cells, its styles kept; a word longer
    than that (a URI, a path) stays whole on a line of its own. A continuation line is indented ``hang``
    spaces more than its line's start."""
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        plain = line.plain
        indent = " " * (len(plain) - len(plain.lstrip()) + hang)
        start = end = 0
        prefix = ""
        for m in re.finditer(r"\s*\S+", plain):
            if end > start and cell_len(prefix) + cell_len(plain[start : m.end()]) > width:
                out.append(Text(prefix) + line[start:end])
                start, prefix = m.end() - len(m.group().lstrip()), indent
            end = m.end()
        out.append(Text(prefix) + line[start:end])
    return Text("\n").join(out)


MIN_WIDTH = 20  # the narrowest a terminal is taken to be: COLUMNS=0 would make rich print nothing at all


class CliConsole(Console):
    """rich's Console, printing for people on a terminal and plain lines elsewhere.

    On a terminal, text wraps at spaces only (rich would fold a word longer
    than the line): a URI longer than the terminal stays whole, so copying it
    copies all of it. A terminal narrower than :data:`MIN_WIDTH` (``COLUMNS=0``)
    is laid out as that wide, for the terminal to wrap. Elsewhere nothing wraps
    (``soft_wrap``): a line stays one line. Emoji codes are left as they are
    (rich would print "a:x:b" as "a❌b"): no message of the CLI uses one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("emoji", False)
        super().__init__(*args, **kwargs)

    def _get_size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        return size if size.width >= MIN_WIDTH else ConsoleDimensions(MIN_WIDTH, size.height)

    size = property(_get_size, Console.size.fset, doc="rich's size, at least :data:`MIN_WIDTH` columns wide.")

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """rich's ``Console.print``, text wrapped as above unless the caller sets ``soft_wrap``, control
        characters in text shown as escapes (:func:`visible`)."""
        if objects and all(isinstance(o, str | Text) for o in objects):
            opts = {k: kwargs.pop(k) for k in ("markup", "highlight", "emoji") if k in kwargs}
            sep = kwargs.pop("sep", " ")
            # Escaped before markup is read: an escape ends in a hex digit, so it never escapes a "[".
            parts = (self.render_str(visible(o), **opts) if isinstance(o, str) else visible_text(o) for o in objects)
            text = Text(sep).join(parts)
            if self.is_terminal and "soft_wrap" not in kwargs:
                text, kwargs["soft_wrap"] = _word_wrap(text, self.width), True
            objects = (text,)
        if not self.is_terminal:
            kwargs.setdefault("soft_wrap", True)
        super().print(*objects, **kwargs)


console: Console = CliConsole()
err_console: Console = CliConsole(stderr=True)

# Every command's --json flag.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# A table cell or a field's value: a plain string (never read as rich markup) or a styled rich Text.
Cell = str | Text


@dataclass(frozen=True)
class Column:
    """A column of :func:`show_table`.

    Attributes:
        header: Its heading.
        wrap: Prose (a reason) that may wrap at spaces on a terminal. Other columns hold
            identifiers: never wrapped nor folded (the table turns into blocks instead).
        right: Right-aligned on a terminal (numbers).
    """

    header: str
    wrap: bool = False
    right: bool = False


INDENT = 4  # a value on its own line(s) below its key, in block mode
MIN_PROSE = 24  # the narrowest a prose column gets before the table turns into blocks


def styled(value: str, style: str) -> Text:
    """A cell shown in ``style`` (e.g. "red") on a terminal; plain in a pipe."""
    return Text(visible(value), style=style)  # rich's Text would drop a CR, BEL or backspace without a trace


def _plain(cell: Cell) -> str:
    """The cell's text on one line (a TAB or line break in it becomes a space), made :func:`visible`."""
    return re.sub(r"[\t\n]", " ", visible(cell.plain if isinstance(cell, Text) else cell))


def _text(cell: Cell) -> Text:
    """The cell as rich Text, made :func:`visible`."""
    return visible_text(cell.copy()) if isinstance(cell, Text) else Text(visible(cell))


def _write_tsv(con: Console, cells: Sequence[Cell]) -> None:
    # Written to the stream itself: rich's printing would turn the TABs into spaces.
    con.file.write("\t".join(_plain(c) for c in cells) + "\n")


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int) -> list[int] | None:
    """Each column's width in a table ``width`` wide, identifier columns at their full width; None if the
    table does not fit (a prose column would be narrower than its longest word or :data:`MIN_PROSE`)."""
    natural = [max([cell_len(c.header)] + [cell_len(_plain(r[i])) for r in rows]) for i, c in enumerate(columns)]
    # rich's default box: an edge, and one space of padding on either side of every column.
    free = width - (3 * len(columns) + 1) - sum(n for n, c in zip(natural, columns, strict=True) if not c.wrap)
    prose = [i for i, c in enumerate(columns) if c.wrap]
    floor = {
        i: min(natural[i], max([MIN_PROSE, cell_len(columns[i].header)] + [_longest_word(_plain(r[i])) for r in rows]))
        for i in prose
    }
    if free < sum(floor.values()):
        return None
    widths = list(natural)
    if sum(natural[i] for i in prose) > free:
        spare, slack = free - sum(floor.values()), {i: natural[i] - floor[i] for i in prose}
        for i in prose:
            widths[i] = floor[i] + spare * slack[i] // max(1, sum(slack.values()))
    return widths


def _print_title(con: Console, title: str) -> None:
    if title:
        con.print(Text(title, style="bold"))


def _print_field(con: Console, key: str, value: Cell, key_width: int) -> None:
    """``key: value`` on one line, or the key alone and the value below it, indented and wrapped at spaces."""
    text = _text(value)
    label = f"{key}:".ljust(key_width)
    width = max(con.width, MIN_WIDTH)  # a CliConsole is never narrower; another Console may be
    if cell_len(label) + 1 + cell_len(text.plain) <= width and "\n" not in text.plain:
        line = Text.assemble((label, "bold"), " ", text) if text.plain else Text(label.rstrip(), "bold")
        con.print(line, soft_wrap=True)
        return
    con.print(Text(f"{key}:", style="bold"), soft_wrap=True)
    indented = Text("\n").join(Text(" " * INDENT) + line for line in text.split("\n", allow_blank=True))
    con.print(_word_wrap(indented, width, hang=0), soft_wrap=True)


def _print_blocks(con: Console, title: str, records: Sequence[Sequence[tuple[str, Cell]]]) -> None:
    """One block of ``key: value`` lines per record, a blank line between records (and after the title)."""
    _print_title(con, title)
    for n, record in enumerate(records):
        if n or title:
            con.print()
        key_width = max((cell_len(k) + 1 for k, _ in record), default=0)
        for key, value in record:
            _print_field(con, key, value, key_width)


def show_table(
    title: str, columns: Sequence[Column | str], rows: Sequence[Sequence[Cell]], con: Console | None = None
) -> None:
    """Prints records: a table, blocks or TSV (see the module docstring). Every value is shown whole.

    Args:
        title: What the table lists (left out in a pipe).
        columns: The columns (a plain string is an identifier column of that heading).
        rows: One sequence of cells per record, in the columns' order.
        con: Where to print (default: the CLI's standard output).
    """
    con = con or console
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    if not con.is_terminal:
        _write_tsv(con, [c.header for c in cols])
        for row in rows:
            _write_tsv(con, row)
        return
    widths = _widths(cols, rows, con.width)
    if widths is None:
        _print_blocks(con, title, [[(c.header, cell) for c, cell in zip(cols, row, strict=True)] for row in rows])
        return
    _print_title(con, title)
    _print_grid(con, cols, widths, rows, show_header=True)


def _print_grid(
    con: Console, cols: Sequence[Column], widths: Sequence[int], rows: Sequence[Sequence[Cell]], show_header: bool
) -> None:
    table = Table(show_header=show_header)
    for c, w in zip(cols, widths, strict=True):
        # overflow "fold" is only a guard: the widths hold every identifier whole and every word of prose.
        table.add_column(c.header, width=w, no_wrap=not c.wrap, overflow="fold", justify="right" if c.right else "left")
    for row in rows:
        table.add_row(*(_text(cell) for cell in row))
    con.print(table, soft_wrap=False, crop=False)


def show_fields(title: str, rows: Sequence[tuple[str, Cell]], con: Console | None = None) -> None:
    """Prints one record's fields: a two-column table, ``key: value`` lines or ``key<TAB>value`` lines.

    Args:
        title: What the fields describe (left out in a pipe: give what it names as fields too).
        rows: (key, value) pairs, in order.
        con: Where to print (default: the CLI's standard output).
    """
    con = con or console
    if not con.is_terminal:
        for key, value in rows:
            _write_tsv(con, [key, value])
        return
    cols = [Column("field"), Column("value")]
    widths = _widths(cols, rows, con.width)
    if widths is None:
        _print_blocks(con, title, [rows])
        return
    _print_title(con, title)
    table_rows = [(styled(k, "bold"), v) for k, v in rows]
    _print_grid(con, cols, widths, table_rows, show_header=False)


def show_note(markup: str, con: Console | None = None) -> None:
    """A line below a table that is not a record (rich markup, its data escaped): ``# `` in front in a pipe."""
    con = con or console
    if con.is_terminal:
        con.print(f"  {markup}")
    else:
        con.print(Text("# " + _plain(Text.from_markup(visible(markup), emoji=False))))  # one line, as a record is


def show_heading(text: str, con: Console | None = None) -> None:
    """A heading above a block of lines (a log's tail): a rule on a terminal (the text alone in bold when a rule
    would cut it), ``# text`` in a pipe."""
    con, text = con or console, visible(text)
    if con.is_terminal:
        if cell_len(text) + 4 <= con.width:  # rich's rule: "─ text ─", and it would cut a longer text with …
            con.rule(Text(text))
        else:
            con.print(Text(text, style="bold"))
    else:
        con.print(Text(f"# {text}"))


@contextmanager
def spinner(text: str) -> Iterator[Callable[[str], None] | None]:
    """A spinner showing ``text``, then each progress message given to the function it yields, on a terminal.

    In a pipe there is no spinner and it yields None (no progress to report).
    """
    if not console.is_terminal:
        yield None
        return
    with console.status(text) as status:
        yield lambda message: status.update(visible(message))


def emit_json(data: Any) -> None:
    """Prints ``data`` as JSON on stdout (one document, sorted keys)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def fail(message: str, as_json: bool, code: int = 1) -> NoReturn:
    """Reports an error (as JSON or red text on stderr) and exits with ``code``."""
    if as_json:
        emit_json({"error": message})
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise SystemExit(code)


def show_up(what: str, report: Any, status: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Prints what an ``up`` did (an ``UpReport``) and the status after it: the same shape for every part."""
    if as_json:
        emit_json(
            {
                "actions": report.actions,
                "seconds": round(report.seconds, 2),
                "seconds_to_healthy": round(report.seconds_to_healthy, 2),
                "status": status.to_dict(),
            }
        )
        return
    if report.actions:
        for a in report.actions:
            console.print(f"  • {escape(a)}")
        console.print(f"{what} up in {report.seconds:.1f}s (healthy {report.seconds_to_healthy:.1f}s after start)")
    else:
        console.print(f"{what} already up and healthy: nothing changed")
    render(status)


def bring_up(what: str, server: Any, errors: type[Exception], as_json: bool, render: Callable[[Any], None]) -> None:
    """The ``up`` command of a part: ``server.up`` (a spinner with its progress on a terminal), its
    refusals (``errors``) as a one-line failure, then :func:`show_up` with the status after it."""
    try:
        if as_json:
            report = server.up()
        else:
            with spinner(f"bringing {what} up…") as progress:
                report = server.up(progress=progress)
    except errors as exc:
        fail(str(exc), as_json)
    show_up(what, report, server.status(), as_json, render)


def show_status(status: Any, healthy: bool, as_json: bool, render: Callable[[Any], None]) -> None:
    """The ``status`` command of a part: JSON or ``render``; exit 1 unless ``healthy``."""
    if as_json:
        emit_json(status.to_dict())
    else:
        render(status)
    if not healthy:
        raise SystemExit(1)


def show_stopped(what: str, stopped: list[str], as_json: bool) -> None:
    """The ``down`` command's answer: what was stopped (nothing, if it was not running)."""
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped {what}" if stopped else f"{what} was not running")


def show_cleaned(what: str, stopped: list[str], removed: Path, as_json: bool) -> None:
    """The ``clean`` command's answer: what was stopped and which state folder was deleted."""
    if as_json:
        emit_json({"stopped": stopped, "removed": str(removed)})
    else:
        console.print(
            f"stopped {what} and removed its state {removed}" if stopped else f"removed {what} state {removed}"
        )


_MARKS = {True: "[green]ok[/]", False: "[red]FAILED[/]", None: "[yellow]not made[/]"}


def show_checks(checks: Any) -> None:
    """One line per named check (``ok``: True, False, or None for a check that could not be made)."""
    for c in checks:
        console.print(f"  {_MARKS[c.ok]} {c.name}: {escape(c.detail)}")
