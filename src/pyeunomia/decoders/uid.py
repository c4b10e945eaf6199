"""`uid`: a user id as its user name (the password database: /etc/passwd,
or NSS); an id without a name shows as the number. Names are cached per id
for the run."""

from __future__ import annotations

import pwd
from collections.abc import Mapping
from typing import Any

from .registry import Decode, DecoderType


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError, ValueError):
        return str(uid)


def _make(params: Mapping[str, Any]) -> Decode:
    names: dict[int, str] = {}

    def decode(uid: int) -> str:
        found = names.get(uid)
        if found is None:
            if len(names) >= 4096:
                names.clear()
            found = names[uid] = user_name(uid)
        return found
    return decode


DECODER = DecoderType("uid", ("int",), (), _make, "a user id as its user name")
