"""psql's lexing, as regular expressions (src/fe_utils/psqlscan.l): what splits a dump.

Identifiers may hold `$` after their first character and any byte >= 0x80; a line comment
ends at CR as well as LF; a quote opens a standard string, `E'` an escape string, `$tag$` a
dollar quote. psql tracks BEGIN ... END only inside CREATE [OR REPLACE] FUNCTION|PROCEDURE.
"""

from __future__ import annotations

import re

# The dump's own `\restrict KEY` / `\unrestrict KEY` lines (pg_dump 17.6+, 18): the only
# meta-commands pg_dump writes. The feed drops them and adds its own.
RESTRICT_LINE = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]{1,64}\r?\n?")
COPY_END = re.compile(rb"(?m)^\\\.\r?$")
MAXIMUM_LINE_BYTES = 256 * 1024 * 1024
STRING_SHOWN_BYTES = 64  # literal contents kept in a statement's skeleton

TOKEN = re.compile(rb"""
    (?P<space>[ \t\r\f\n\v]+)
  | (?P<line_comment>--[^\n\r]*)
  | (?P<block_comment>/\*)
  | (?P<estring>[eE]')
  | (?P<string>(?:[uU]&|[bBxXnN])?')
  | (?P<quoted>(?:[uU]&)?")
  | (?P<dollar>\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$)
  | (?P<word>[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*)
  | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)
  | (?P<typecast>::)
  | (?P<variable>:[A-Za-z\x80-\xff_'"])
  | (?P<backslash>\\)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<semicolon>;)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
STRING_END = re.compile(rb"'")
ESTRING_STOP = re.compile(rb"[\\']")
QUOTED_END = re.compile(rb'"')
COMMENT_STOP = re.compile(rb"/\*|\*/")
# psqlscan.l tracks BEGIN ... END only in CREATE [OR REPLACE] FUNCTION|PROCEDURE.
FUNCTION_HEADINGS = ("cf", "cp", "corf", "corp")  # by position; "-" is any other word
