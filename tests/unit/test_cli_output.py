"""The CLI's output for people and for pipes never cuts a value (docs/operations.md, "Output").

On a terminal a table that fits keeps every identifier whole (prose wraps at
spaces), one that does not turns into ``key: value`` blocks; in a pipe a table
is a header and TAB-separated records, with no colour, box or line wrapping.
The renderer is tested on rich consoles forced to a terminal 80 and 200
columns wide and to a pipe; ``modelledger bridge jobs`` is run as a process of
its own in a pseudo-terminal (80 and 200 columns) and into a pipe, on an outbox
made with the bridge's own :class:`Outbox`.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.markup import escape
from rich.text import Text

from modelledger.mlops.bridge import Outbox
from modelledger.mlops.cli import output
from modelledger.mlops.cli.output import CliConsole, Column, show_fields, show_heading, show_note, show_table, styled
from modelledger.runtime.settings import STATE_DIR_ENV, BridgeSettings
from tests.cli_capture import (
    minimal_env,
    pipe,
    read_blocks,
    read_table,
    read_tsv,
    run_in_pty,
    run_piped,
    strip_ansi,
    terminal,
    too_wide,
)

NAME = "breast-cancer-classifier-with-a-long-name"
DIGEST = hashlib.sha256(b"model").hexdigest()
TX = hashlib.sha256(b"tx").hexdigest()
FINGERPRINT = hashlib.sha256(b"certificate").hexdigest()
URI = f"s3://modelledger-anchored/models/{hashlib.sha256(b'manifest').hexdigest()}/index.json"  # 108 characters
# Prose longer than any terminal line, whose longest word (a URI) is 51 characters.
REASON = (
    "gave up after 12 attempts: the anchored copy s3://modelledger-anchored/models/ab12/index.json could "
    "not be read because S3 answered 503 SlowDown to every request for ten minutes; fix S3, then run "
    "bridge retry with the model's name and version"
)
CONFLICT = (
    "the ledger's record of planted/1 is not the version MLflow holds: files that differ: weights.bin and "
    "MLmodel; registered by Org1MSP data_scientist in another transaction, see the ledger's history"
)
BOXES = set("│┃━─┏┓┗┛┡┩└┘╇╈")
LIST_HEADER = ["name", "version", "status", "owner", "model digest", "registered"]
LIST_ROWS = [
    [NAME, "1", "REGISTERED", "Org1MSP", DIGEST, "2026-12-07T22:51:00.123456789Z"],
    ["iris", "12", "APPROVED", "Org2MSP", hashlib.sha256(b"iris").hexdigest(), "2026-12-07T22:52:00Z"],
]


# --------------------------------------------------------------------------- the renderer
def test_a_table_that_fits_keeps_every_identifier_whole_on_one_line() -> None:
    con, out = terminal(200)
    show_table("model versions", LIST_HEADER, LIST_ROWS, con)
    text = strip_ansi(out.getvalue())
    assert read_table(text) == (LIST_HEADER, LIST_ROWS)
    assert "…" not in text and not too_wide(text, 200)
    assert "\x1b[" in out.getvalue()  # colour stays on a terminal


def test_a_table_too_wide_for_the_terminal_turns_into_one_block_per_record() -> None:
    con, out = terminal(80)
    show_table("model versions", LIST_HEADER, LIST_ROWS, con)
    text = strip_ansi(out.getvalue())
    assert read_blocks(text, LIST_HEADER) == [dict(zip(LIST_HEADER, row, strict=True)) for row in LIST_ROWS]
    assert f"model digest: {DIGEST}" in text.splitlines()  # key: value, the digest whole
    assert "…" not in text and not set(text) & BOXES and not too_wide(text, 80)
    assert text.splitlines()[0] == "model versions" and text.count("\n\n") == 2  # a blank line before each record


def test_a_prose_column_wraps_at_spaces_inside_a_table_when_the_identifiers_fit() -> None:
    con, out = terminal(200)
    header = ["job", "tx id", "reason"]
    show_table("bridge jobs", ["job", "tx id", Column("reason", wrap=True)], [[f"{NAME}/1", TX, REASON]], con)
    text = strip_ansi(out.getvalue())
    assert read_table(text) == (header, [[f"{NAME}/1", TX, REASON]])
    assert sum(line.startswith("│") for line in text.splitlines()) > 1  # the reason wrapped, not cut
    assert "…" not in text and not too_wide(text, 200)


def test_a_word_longer_than_the_terminal_is_printed_whole_on_a_line_of_its_own() -> None:
    con, out = terminal(80)
    show_fields(f"{NAME} version 1", [("status", "REGISTERED"), ("storage", f"{URI} (version v1)")], con)
    lines = strip_ansi(out.getvalue()).splitlines()
    assert "    " + URI in lines and "    (version v1)" in lines
    assert read_blocks("\n".join(lines), ["status", "storage"]) == [
        {"status": "REGISTERED", "storage": f"{URI} (version v1)"}
    ]


def test_fields_are_a_two_column_table_when_they_fit() -> None:
    con, out = terminal(200)
    rows = [("status", "REGISTERED"), ("storage", f"{URI} (version v1)"), ("registrant", f"registrar ({FINGERPRINT})")]
    show_fields("iris version 1", rows, con)
    assert read_table(strip_ansi(out.getvalue())) == ([], [list(r) for r in rows])


def test_in_a_pipe_a_table_is_a_header_and_tab_separated_records_without_decoration() -> None:
    con, out = pipe()
    rows = [*LIST_ROWS, ["tab\tand\nnewline", "1", styled("REVOKED", "red"), "Org1MSP", DIGEST, "-"]]
    show_table("model versions", LIST_HEADER, rows, con)
    show_note("[red]1 version(s)[/] revoked", con)
    text = out.getvalue()
    assert "\x1b" not in text and not set(text) & BOXES and "model versions" not in text  # no title
    header, records = read_tsv(text)
    assert header == LIST_HEADER
    assert records == [*LIST_ROWS, ["tab and newline", "1", "REVOKED", "Org1MSP", DIGEST, "-"]]
    assert text.splitlines()[-1] == "# 1 version(s) revoked"


def test_in_a_pipe_fields_are_key_tab_value_lines() -> None:
    con, out = pipe()
    show_fields("iris version 1", [("status", styled("REVOKED", "red")), ("storage", URI)], con)
    assert out.getvalue() == f"status\tREVOKED\nstorage\t{URI}\n"


def test_a_long_line_is_never_broken_inside_a_uri() -> None:
    line = f"  [green]ok[/] anchored-copy: the bytes at {URI} version v1 are the ledger's manifest"
    con, out = terminal(80)
    con.print(line)
    assert any(URI in row for row in strip_ansi(out.getvalue()).splitlines())  # wrapped at spaces only
    con, out = pipe()
    con.print(line)
    assert out.getvalue() == f"  ok anchored-copy: the bytes at {URI} version v1 are the ledger's manifest\n"


def test_in_a_pipe_there_is_no_spinner_and_a_heading_is_a_comment_line(monkeypatch: pytest.MonkeyPatch) -> None:
    con, out = pipe()
    monkeypatch.setattr(output, "console", con)
    with output.spinner("bringing S3 up…") as progress:
        assert progress is None  # the server's up() is given no progress to report
    show_heading("MinIO (/state/s3/logs/minio.log)", con)
    assert out.getvalue() == "# MinIO (/state/s3/logs/minio.log)\n"
    con, out = terminal(80)
    monkeypatch.setattr(output, "console", con)
    with output.spinner("bringing S3 up…") as progress:
        assert callable(progress)


@pytest.mark.parametrize("width", [0, 1, 4])
def test_a_terminal_narrower_than_any_value_still_shows_every_value_whole(width: int) -> None:
    con, out = terminal(width)
    show_table("model versions", LIST_HEADER, LIST_ROWS, con)
    text = strip_ansi(out.getvalue())
    assert read_blocks(text, LIST_HEADER) == [dict(zip(LIST_HEADER, row, strict=True)) for row in LIST_ROWS]
    con, out = terminal(width)
    show_fields("iris version 1", [("status", "REGISTERED"), ("storage", f"{URI} (version v1)")], con)
    con.print(f"  [green]ok[/] anchored-copy: the bytes at {URI} version v1 are the ledger's manifest")
    text += strip_ansi(out.getvalue())
    assert read_blocks(text, ["status", "storage"])[-1] == {"status": "REGISTERED", "storage": f"{URI} (version v1)"}
    assert "    " + URI in text.splitlines() and text.splitlines()[-1] == "    manifest"
    assert not too_wide(text, output.MIN_WIDTH)  # laid out for a terminal of the narrowest width kept


@pytest.mark.parametrize("width", [0, 40, 80])
def test_a_heading_too_long_for_a_rule_is_printed_whole(width: int) -> None:
    con, out = terminal(width)
    heading = f"MinIO (/home/someone/modelledger/.state/s3/logs/{NAME}/minio.log)"  # 92 characters
    show_heading(heading, con)
    assert " ".join(strip_ansi(out.getvalue()).split()) == heading  # wrapped at its space, nothing cut


# An exception's text with what a terminal would act on: clear the screen, set the window title, ring the bell,
# a C1 "next line", NUL, DEL, a carriage return and the line and paragraph separators.
HOSTILE = "S3 said \x1b[2J\x1b]0;pwned\x07 no\x85 \x00\x7f end\rnext\u2028line\u2029para"
HOSTILE_SHOWN = r"S3 said \x1b[2J\x1b]0;pwned\x07 no\x85 \x00\x7f end"  # then "next\u2028line\u2029para"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def test_control_characters_in_a_piped_value_are_printed_as_visible_escapes() -> None:
    con, out = pipe()
    show_table("jobs", ["job", Column("reason", wrap=True)], [["a/1", HOSTILE], ["b/2", styled(HOSTILE, "red")]], con)
    show_note(f"[red]reason[/]: {escape(HOSTILE)}", con)
    show_fields("job", [("reason", HOSTILE)], con)
    con.print(f"  [red]FAILED[/] anchored-copy: {escape(HOSTILE)}")
    text = out.getvalue()
    assert not CONTROL.search(text.replace("\n", "").replace("\t", ""))
    shown = HOSTILE_SHOWN + r" next\u2028line\u2029para"
    assert read_tsv("\n".join(text.splitlines()[:3])) == (["job", "reason"], [["a/1", shown], ["b/2", shown]])
    assert text.splitlines()[3:] == [
        f"# reason: {shown}",
        f"reason\t{shown}",
        f"  FAILED anchored-copy: {HOSTILE_SHOWN}",  # on print's lines a CR is a line break
        r"next\u2028line\u2029para",
    ]


@pytest.mark.parametrize("width", [80, 200])
def test_control_characters_never_reach_a_terminal_from_a_value(width: int) -> None:
    con, out = terminal(width)
    show_table("jobs", ["job", Column("reason", wrap=True)], [["a/1", HOSTILE], ["b/2", styled(HOSTILE, "red")]], con)
    show_fields("job", [("reason", HOSTILE), ("tx id", TX)], con)
    show_fields("job", [("reason", styled(f"{HOSTILE} {URI} {URI}", "red"))], con)  # blocks at either width
    show_note(f"[red]reason[/]: {escape(HOSTILE)}", con)
    con.print(f"  [red]FAILED[/] anchored-copy: {escape(HOSTILE)}")
    raw = out.getvalue()
    text = strip_ansi(raw)
    assert "\x1b[2J" not in raw and "\x1b]" not in raw and "\x07" not in raw  # no sequence of the value's
    assert not CONTROL.search(text.replace("\n", ""))
    assert text.count(r"\x1b[2J\x1b]0;pwned\x07") == 6 and text.count(r"\u2028line\u2029para") == 6
    assert "\x1b[31m" in raw  # the value's own style is kept


@pytest.mark.parametrize("make", [pipe, lambda: terminal(80)])
def test_colons_around_a_word_stay_as_they_are_not_an_emoji(make: Callable[[], tuple[CliConsole, io.StringIO]]) -> None:
    con, out = make()
    con.print(f"  [red]FAILED[/] signature: {escape('signed by a:x:b :smile: at 12:00:00')}")
    show_note("key :cross_mark: rotated", con)
    assert strip_ansi(out.getvalue()).splitlines() == [
        "  FAILED signature: signed by a:x:b :smile: at 12:00:00",
        "  key :cross_mark: rotated" if con.is_terminal else "# key :cross_mark: rotated",
    ]


# A reason mostly in Chinese, a Chinese character two cells wide: 96 characters, 147 cells.
CJK = "模型版本 已在 账本上 注册 但 匿名 副本 的 字节 与 清单 不一致 文件 weights.bin 已被 更改 请 从 MLflow 重新 锚定 该 版本 然后 再次 验证 签名 和 锁定"


def test_a_block_value_of_wide_characters_wraps_by_cells_and_keeps_its_styles() -> None:
    con, out = terminal(40)
    value = Text.assemble((CJK, "red"), " ", ("REVOKED", "bold magenta"))
    show_fields("job", [("reason", value), ("tx id", TX)], con)
    text = strip_ansi(out.getvalue())
    assert not too_wide(text, 40), too_wide(text, 40)
    assert read_blocks(text, ["reason", "tx id"]) == [{"reason": f"{CJK} REVOKED", "tx id": TX}]
    raw = out.getvalue()
    assert "\x1b[1;35mREVOKED" in raw and raw.count("\x1b[31m") > 1  # every line of the reason is red


# --------------------------------------------------------------------------- `modelledger bridge jobs`, for real
JOBS_HEADER = ["job", "state", "attempts", "origin", "tx id", "reason"]


@pytest.fixture
def outbox(tmp_path: Path) -> tuple[dict[str, str], list[list[str]]]:
    """An outbox with a done, a dead, a conflict and a pending job; the CLI's environment and the records
    ``bridge jobs`` must show."""
    state = tmp_path / "state"
    box = Outbox(BridgeSettings(state_dir=state).outbox_file)
    for name, version, origin, end in (
        (NAME, "1", "webhook", lambda job: box.complete(job, tx_id=TX)),
        ("fraud-detector", "12", "reconciler", lambda job: box.dead(job, REASON)),
        ("planted", "1", "webhook", lambda job: box.conflict(job, CONFLICT)),
    ):
        box.enqueue(name, version, origin)
        job = box.lease("worker-1", 300)
        assert job is not None and job.name == name
        end(job)
    box.enqueue("pending-model", "3", "webhook")
    expected = [
        [j.key, j.state, str(j.attempts), j.origin, j.checkpoint.get("tx_id", "") or "-", j.reason] for j in box.jobs()
    ]
    box.close()
    assert [r[4] for r in expected] == [TX, "-", "-", "-"] and expected[1][5] == REASON
    return minimal_env(tmp_path, TERM="xterm-256color", **{STATE_DIR_ENV: str(state)}), expected


def test_bridge_jobs_in_a_pipe_is_tsv_with_every_reason_whole(outbox: tuple[dict[str, str], list[list[str]]]) -> None:
    env, expected = outbox
    text = run_piped(["bridge", "jobs"], env)
    assert "\x1b" not in text and "…" not in text and not set(text) & BOXES
    assert read_tsv(text) == (JOBS_HEADER, expected)
    assert f"{NAME}/1\tdone\t1\twebhook\t{TX}\t" in text.splitlines()  # `cut -f5` gives the tx id
    assert text.splitlines()[-1].startswith("# 1 version(s) in conflict: ")


def test_bridge_jobs_in_an_80_column_terminal_is_one_block_per_job(
    outbox: tuple[dict[str, str], list[list[str]]],
) -> None:
    env, expected = outbox
    raw = run_in_pty(["bridge", "jobs"], env, columns=80)
    text = strip_ansi(raw)
    assert "\x1b[" in raw and "…" not in text and not set(text) & BOXES
    assert read_blocks(text, JOBS_HEADER) == [dict(zip(JOBS_HEADER, row, strict=True)) for row in expected]
    assert not [line for line in text.splitlines() if len(line) > 80]
    assert any(line.endswith(f"job:      {NAME}/1") for line in text.splitlines())
    assert any(line.endswith(f"tx id:    {TX}") for line in text.splitlines())


def test_bridge_jobs_in_a_200_column_terminal_is_a_table_whose_reasons_wrap(
    outbox: tuple[dict[str, str], list[list[str]]],
) -> None:
    env, expected = outbox
    text = strip_ansi(run_in_pty(["bridge", "jobs"], env, columns=200))
    assert "…" not in text and not [line for line in text.splitlines() if len(line) > 200]
    assert read_table(text) == (JOBS_HEADER, expected)
    assert any(NAME in line and TX in line for line in text.splitlines())  # one row holds both whole


@pytest.mark.parametrize("columns", [0, 5])
def test_bridge_jobs_in_a_terminal_of_0_or_5_columns_is_one_block_per_job(
    outbox: tuple[dict[str, str], list[list[str]]], columns: int
) -> None:
    env, expected = outbox
    text = strip_ansi(run_in_pty(["bridge", "jobs"], env, columns=columns))
    assert "Traceback" not in text and "…" not in text
    assert read_blocks(text, JOBS_HEADER) == [dict(zip(JOBS_HEADER, row, strict=True)) for row in expected]


def test_bridge_jobs_shows_control_characters_of_a_reason_as_escapes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    box = Outbox(BridgeSettings(state_dir=state).outbox_file)
    box.enqueue("m", "1", "webhook")
    job = box.lease("worker-1", 300)
    assert job is not None
    box.dead(job, HOSTILE)
    box.close()
    env = minimal_env(tmp_path, TERM="xterm-256color", **{STATE_DIR_ENV: str(state)})
    piped = run_piped(["bridge", "jobs"], env)
    assert read_tsv(piped)[1][0][5] == HOSTILE_SHOWN + r" next\u2028line\u2029para"
    raw = run_in_pty(["bridge", "jobs"], env, columns=80)
    assert "\x1b[2J" not in raw and "\x1b]" not in raw and not CONTROL.search(strip_ansi(raw).replace("\n", ""))
    assert r"\x1b[2J\x1b]0;pwned\x07" in strip_ansi(raw)
