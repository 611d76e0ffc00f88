"""Cleaning people's text of characters nobody sees but software acts on.

Control characters and invisible formatting characters (Unicode category ``Cf``) have no
business in an event's title, a venue or a person's name, and do harm where the text goes:
U+202E (RIGHT-TO-LEFT OVERRIDE) makes ``活动\u202etxt.exe`` read backwards on a page, in a
saved file's name, a text message or a chat group; zero-width characters (U+200B-U+200D,
U+2060, U+FEFF) make two equal-looking titles differ and hide words from filters; C0/C1
controls upset terminals, spreadsheets and SMS gateways.

* :func:`strip_invisible` is for input (the API schemas, organizations): it drops the ``Cf``
  characters and the C1 controls (U+0080-U+009F) and turns the Unicode line and paragraph
  separators into a line feed. It leaves the C0 controls alone: the schemas refuse those with
  a clear message (:mod:`scheduler.api.schemas`), as they always did.
* :func:`clean_text` is for output, where text leaves the system (file names, texts, robot
  messages), defensively, since older rows were stored before input was cleaned: it drops
  every control character too, keeping only line feeds and tabs when ``multiline``, and
  otherwise puts the text on one line.

Legitimate text is kept as it is: Chinese, full-width punctuation, the ideographic space,
and emoji, including the zero-width joiner inside an emoji sequence (👨‍👩‍👧) and the tag
characters of a subdivision flag (🏴󠁧󠁢󠁳󠁣󠁴󠁿); a joiner anywhere else is dropped.
"""
from __future__ import annotations

import re
import unicodedata

ZWJ = "\u200d"
#: The tag characters (U+E0020-U+E007F) that spell a subdivision flag after U+1F3F4 (🏴).
_TAGS = range(0xE0020, 0xE0080)
_BLACK_FLAG = "\U0001f3f4"
#: Line and paragraph separators: line breaks to a person, not to most software. (NEL, U+0085, is
#: dropped with the other C1 controls: it is mostly Windows-1252's "…" read as Latin-1.)
_BREAKS = {"\u2028": "\n", "\u2029": "\n"}
#: Characters that need no look at all (the quick path: most text has none of the others).
_PLAIN = re.compile(r"[^\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u089f\u08e2\u180e"
                    r"\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd-\U000110cd"
                    r"\U00013430-\U0001345f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]*")

#: White space runs of one-line text (ASCII only: an ideographic space U+3000 is the writer's choice).
_RUNS = re.compile(r"[ \t\n\r\f\v]+")


def _is_emoji_part(char: str) -> bool:
    """Whether ``char`` may stand on either side of a zero-width joiner in an emoji sequence
    (a pictograph, a variation selector 16, a skin tone, the tags of a flag)."""
    if not char:
        return False
    code = ord(char)
    return (unicodedata.category(char) == "So" or code == 0xFE0F or 0x1F3FB <= code <= 0x1F3FF
            or code in _TAGS or 0x1F000 <= code <= 0x1FAFF)


def _drop_formatting(text: str, *, controls: bool, keep: str) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char in _BREAKS:
            out.append(_BREAKS[char])
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            if char in keep or not controls and not 0x80 <= ord(char) <= 0x9F:  # C0 and DEL: for input to refuse
                out.append(char)
            continue
        if category != "Cf":
            out.append(char)
            continue
        if char == ZWJ:
            before = out[-1] if out else ""
            after = text[index + 1] if index + 1 < len(text) else ""
            if _is_emoji_part(before) and _is_emoji_part(after):
                out.append(char)
        elif ord(char) in _TAGS and out and (out[-1] == _BLACK_FLAG or ord(out[-1]) in _TAGS):
            out.append(char)
        elif char == "\U000e007f" and out and ord(out[-1]) in _TAGS:  # CANCEL TAG ends a flag
            out.append(char)
    return "".join(out)


def strip_invisible(text: str) -> str:
    """``text`` without invisible formatting characters (bidirectional overrides and isolates,
    zero-width spaces and joiners outside emoji, BOMs, soft hyphens: Unicode ``Cf``) and C1 controls;
    line and paragraph separators become line feeds. C0 controls are left for the caller to refuse."""
    if _PLAIN.fullmatch(text):
        return text
    return _drop_formatting(text, controls=False, keep="")


def clean_text(text: object, *, multiline: bool = False) -> str:
    """``text`` fit to leave the system: no control or invisible formatting character at all.

    With ``multiline`` line feeds and tabs stay (CR LF and CR become LF); without it every line
    break and tab becomes a space and runs of white space one space, ends trimmed."""
    value = "" if text is None else str(text)
    if not _PLAIN.fullmatch(value):
        value = value.replace("\r\n", "\n").replace("\r", "\n")
        value = _drop_formatting(value, controls=True, keep="\n\t")
    if multiline:
        return value
    return _RUNS.sub(" ", value).strip(" ")
