"""URLs in messages and logs: never show a password."""

from __future__ import annotations

import re

__all__ = ["mask_url"]

_PASSWORD = re.compile(r"(//[^/?#@:]*:)[^/?#@]*@")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and logs.

    Works on the text, without parsing ports or hosts, so that even a URL too
    broken to parse is masked.
    """
    return _PASSWORD.sub(r"\1***@", url)
