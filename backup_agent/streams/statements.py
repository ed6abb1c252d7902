"""Only what pg_dump writes: split a plain dump into statements and judge each one.

The splitter lexes as psql does (src/fe_utils/psqlscan.l) and refuses the first statement
pg_dump never writes for one database (`\\!`, `COPY ... TO PROGRAM`, `DROP DATABASE`, roles).
It runs twice over the same bytes: to prove the dump, then with a StatementSink
(restoring/executor.py) that executes each statement as the exact bytes judged. Outside
literals a statement holds no comment and no E'' or U&'' string (pg_dump writes none with
standard_conforming_strings on). COPY data is skipped or passed on at C speed.
"""

from __future__ import annotations

from backup_agent.model.statement_sink import StatementSink
from backup_agent.streams.filters import copy_end
from backup_agent.streams.psql_tokens import (
    COMMENT_STOP,
    COPY_END,
    ESTRING_STOP,
    FUNCTION_HEADINGS,
    MAXIMUM_LINE_BYTES,
    QUOTED_END,
    RESTRICT_LINE,
    STRING_END,
    STRING_SHOWN_BYTES,
    TOKEN,
)
from backup_agent.streams.statement_rules import describe, refusal


class StatementCheck:
    """Feed the decompressed dump in chunks; `problem` names the first thing refused.

    `restrict_lines`: the lines of pg_dump's own `\\restrict`/`\\unrestrict` (no statements).
    A `sink` gets each statement that passed, as it ends, and COPY data as it passes.
    """

    def __init__(self, sink: StatementSink | None = None) -> None:
        self.problem: str | None = None
        self.restrict_lines: list[int] = []
        self.statements = 0
        self._sink = sink
        self._text = bytearray()  # the statement being read, when there is a sink
        self._from: int | None = None  # where it starts in the line being read
        self._pending = b""
        self._line = 0  # lines read completely
        self._in_copy = False
        self._copy_at_line_start = True
        self._state = "normal"  # string, estring, quoted, dollar, comment
        self._dollar_tag = b""
        self._comment_depth = 0
        self._literal = bytearray()
        self._parts: list[str] = []
        self._start_line = 0
        self._heading: list[str] = []  # psql's `identifiers`: first letters, by position
        self._words = 0
        self._begin_depth = 0
        self._paren_depth = 0
        self._after_literal = False  # the last token was a closed string literal

    def feed(self, data: bytes) -> None:
        if self.problem is not None:
            return
        nul = data.find(b"\x00")
        if nul >= 0:  # psql would cut the line there (fgets, strlen); no dump has one
            self._refuse(self._line + 1 + data.count(b"\n", 0, nul),
                         "a NUL byte, which psql reads differently")
            return
        buffer = self._pending + data if self._pending else data
        self._pending = b""
        position = 0
        while position < len(buffer) and self.problem is None:
            if self._in_copy:
                position = self._skip_copy(buffer, position)
                continue
            newline = buffer.find(b"\n", position)
            if newline < 0:
                if len(buffer) - position > MAXIMUM_LINE_BYTES:
                    self._refuse(self._line + 1, "a line of over 256 MiB")
                else:
                    self._pending = buffer[position:]
                return
            self._sql_line(buffer[position:newline + 1])
            position = newline + 1

    def finish(self) -> None:
        """The end of the dump: nothing may be left open."""
        if self.problem is None and self._pending:
            pending, self._pending = self._pending, b""
            if self._in_copy:
                if COPY_END.fullmatch(pending):
                    self._end_copy()
            else:
                self._sql_line(pending + b"\n")
        if self.problem is not None:
            return
        if self._in_copy:
            self._refuse(self._line, "COPY data that never ends with its \\. line")
        elif self._state != "normal" or self._parts:
            self._refuse(self._start_line or self._line,
                         "a statement left unfinished at the end of the dump")

    def _skip_copy(self, buffer: bytes, position: int) -> int:
        """COPY data: skipped (or passed on) line-exactly, at C speed."""
        start = position
        if not self._copy_at_line_start:
            newline = buffer.find(b"\n", position)
            if newline < 0:
                self._copy_out(buffer, position, len(buffer))
                return len(buffer)
            self._line += 1
            start = newline + 1
            self._copy_at_line_start = True
        marker = copy_end(buffer, start)
        if marker < 0:
            self._line += buffer.count(b"\n", start)
            last = buffer.rfind(b"\n", start)
            tail = buffer[last + 1:] if last >= 0 else buffer[start:]
            if len(tail) <= 3 and (last >= 0 or self._copy_at_line_start):
                self._pending = tail  # might still become `\.`
                self._copy_out(buffer, position, len(buffer) - len(tail))
                self._copy_at_line_start = True
            else:
                self._copy_out(buffer, position, len(buffer))
                self._copy_at_line_start = tail == b""
            return len(buffer)
        self._copy_out(buffer, position, marker)
        self._line += buffer.count(b"\n", start, marker)
        newline = buffer.find(b"\n", marker)
        if newline < 0:
            self._pending = buffer[marker:]
            return len(buffer)
        self._line += 1
        self._end_copy()
        return newline + 1

    def _end_copy(self) -> None:
        self._in_copy = False
        if self._sink is not None:
            self._sink.copy_end()

    def _copy_out(self, buffer: bytes, start: int, end: int) -> None:
        if self._sink is not None and end > start:
            self._sink.copy_data(buffer[start:end] if start or end < len(buffer) else buffer)

    def _sql_line(self, line: bytes) -> None:
        number = self._line + 1
        if self._state == "normal" and self._from is None and RESTRICT_LINE.fullmatch(line):
            self.restrict_lines.append(number)  # pg_dump's own: skipped, never executed
            self._line = number
            return
        position = 0
        while position < len(line) and self.problem is None:
            position = self._step(line, position, number)
        if self._from is not None and self._sink is not None:
            self._text += line[self._from:]
            self._from = 0
        self._line = number

    def _step(self, line: bytes, position: int, number: int) -> int:
        """Consume one token (or the rest of a multi-line one); return the next position."""
        if self._state != "normal":
            return self._continue_quoted(line, position)
        match = TOKEN.match(line, position)
        assert match is not None  # `other` matches any byte
        kind = match.lastgroup
        end = match.end()
        if kind == "space":
            return end  # keeps _after_literal: the continuation may cross lines
        if kind in ("line_comment", "block_comment") and self._from is not None:
            self._refuse(number, "a comment inside a statement (pg_dump writes comments only "
                         "between statements)")
            return len(line)
        if kind == "line_comment":
            return end
        if kind == "block_comment":
            self._state, self._comment_depth = "comment", 1
            return end
        if self._from is None:
            self._from = position  # the statement's first token
        if kind == "estring" or match.group().upper().startswith(b"U&"):
            self._refuse(number, f"an {'E' if kind == 'estring' else 'U&'}'' string or name "
                         "(pg_dump never writes one with standard_conforming_strings on)")
            return len(line)
        if kind in ("estring", "string") and self._after_literal:
            self._refuse(number, "string literals side by side (psql would continue the first "
                         "one, escapes and all); pg_dump never writes them")
            return len(line)
        self._after_literal = False
        if kind in ("estring", "string", "quoted"):
            self._begin_statement(number)
            self._state = {"estring": "estring", "string": "string"}.get(kind, "quoted")
            self._literal.clear()
            return end
        if kind == "dollar":
            self._begin_statement(number)
            self._state, self._dollar_tag = "dollar", match.group()
            return end
        if kind in ("backslash", "variable"):
            what = "a psql meta-command" if kind == "backslash" else "a psql variable"
            self._refuse(number, f"{what} ({describe(line[position:])})")
            return len(line)
        self._begin_statement(number)
        text = match.group().decode("utf-8", "replace")
        if kind == "word":
            self._word(text)
        elif kind == "open":
            self._paren_depth += 1
        elif kind == "close":
            self._paren_depth = max(0, self._paren_depth - 1)
        if kind == "semicolon" and self._paren_depth == 0 and self._begin_depth == 0:
            self._end_statement(number, line, end)
            return end if not self._in_copy else len(line)
        self._parts.append(text)
        return end

    def _word(self, word: str) -> None:
        lowered = word.lower()
        if self._words < 4:
            tracked = lowered in ("create", "or", "replace", "function", "procedure")
            self._heading.append(lowered[0] if tracked else "-")
        self._words += 1
        if "".join(self._heading).startswith(FUNCTION_HEADINGS) and self._paren_depth == 0:
            if lowered == "begin" or (lowered == "case" and self._begin_depth >= 1):
                self._begin_depth += 1
            elif lowered == "end" and self._begin_depth > 0:
                self._begin_depth -= 1

    def _continue_quoted(self, line: bytes, position: int) -> int:
        if self._state == "comment":
            match = COMMENT_STOP.search(line, position)
            if match is None:
                return len(line)
            self._comment_depth += 1 if match.group() == b"/*" else -1
            if self._comment_depth == 0:
                self._state = "normal"
            return match.end()
        if self._state == "dollar":
            end = line.find(self._dollar_tag, position)
            if end < 0:
                return len(line)
            self._state = "normal"
            self._parts.append("$$")
            return end + len(self._dollar_tag)
        stop = (ESTRING_STOP if self._state == "estring" else
                QUOTED_END if self._state == "quoted" else STRING_END).search(line, position)
        if stop is None:
            self._keep_literal(line[position:])
            return len(line)
        if stop.group() == b"\\":  # E'' escape: the next byte is taken as it is
            self._keep_literal(line[position:stop.end() + 1])
            return stop.end() + 1
        self._keep_literal(line[position:stop.start()])
        quote = stop.group()
        if line[stop.end():stop.end() + 1] == quote:  # '' or "" inside
            self._keep_literal(quote)
            return stop.end() + 1
        contents = bytes(self._literal[:STRING_SHOWN_BYTES]).decode("utf-8", "replace")
        if len(self._literal) > STRING_SHOWN_BYTES or quote == b'"':
            contents = "…"  # identifiers' names never matter to the rules
        q = quote.decode()
        self._parts.append(f"{'E' if self._state == 'estring' else ''}{q}{contents}{q}")
        self._after_literal = quote == b"'"
        self._state = "normal"
        return stop.end()

    def _keep_literal(self, piece: bytes) -> None:
        if len(self._literal) <= STRING_SHOWN_BYTES:
            self._literal += piece[:STRING_SHOWN_BYTES + 1]

    def _begin_statement(self, number: int) -> None:
        if not self._parts:
            self._start_line = number

    def _end_statement(self, number: int, line: bytes, end: int) -> None:
        parts, self._parts = self._parts, []
        self._heading, self._words, self._begin_depth = [], 0, 0
        self.statements += 1
        text = b""
        if self._sink is not None and self._from is not None:
            text = bytes(self._text + line[self._from:end])
        self._text.clear()
        self._from = None
        refused = refusal(parts)
        if refused is not None:
            self._refuse(self._start_line, f"{refused}: {' '.join(parts)[:80]}")
            return
        is_copy = bool(parts) and parts[0].upper() == "COPY"
        if is_copy and line[end:].strip():
            self._refuse(number, "text after a COPY ... FROM stdin; on its line")
            return
        if self._sink is not None and parts:
            self._sink.statement(text, parts, self._start_line)
        if is_copy:
            self._in_copy, self._copy_at_line_start = True, True
            self._line = number

    def _refuse(self, line: int, what: str) -> None:
        if self.problem is None:
            self.problem = f"line {line}: {what}"
