"""Free text from callers: printable characters only, so that every store (PostgreSQL rejects
NUL in text) and every log line takes it as it is.

Pure validators, importable from workflow code.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

#: Unicode categories refused in free text: control characters (NUL, TAB, CR, LF, DEL, C1)
#: and lone surrogates (not encodable as UTF-8).
REFUSED_CATEGORIES = ("Cc", "Cs")


def printable(value: str) -> str:
    """Return ``value`` if it has no control character and no lone surrogate.

    Raises ``ValueError`` naming the first offending character and its position.
    """
    for index, char in enumerate(value):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise ValueError(
                f"must not contain control characters (found U+{ord(char):04X} at position {index})"
            )
    return value


#: A ``str`` field that refuses control characters; give its length bounds with ``Field``.
Printable = Annotated[str, AfterValidator(printable)]


#: ``scheme://user:password@`` (the userinfo of a URL).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#\"'<>]+@")
#: A query string of a URL or a path (``?a=1&token=x``), up to whitespace or a quote.
_QUERY = re.compile(r"(?P<path>(?:://|/)[^\s?\"'<>]*)\?[^\s\"'<>#]+")
REDACTED = "***"


def redact(text: str) -> str:
    """``text`` with every URL's userinfo and every query string replaced by ``***``
    (``https://***@host/p?***``): where credentials and signed links' signatures live."""
    text = _USERINFO.sub(rf"\g<scheme>{REDACTED}@", text)
    return _QUERY.sub(rf"\g<path>?{REDACTED}", text)
