"""`uid`: a user's name (`root`) or number as the uid."""

from __future__ import annotations

from .base import ConverterType, Params, no_params, whole_number


def parse(text: str, params: Params) -> int:
    number = whole_number(text)
    if number is not None:
        if not 0 <= number < (1 << 32) - 1:
            raise ValueError(f"{number} is not a uid: give 0 to {(1 << 32) - 2} or a user name")
        return number
    import pwd  # only when a name is given

    try:
        return pwd.getpwnam(text.strip()).pw_uid
    except KeyError:
        raise ValueError(f"no user is named {text!r}: give a user name or a uid") from None


CONVERTER = ConverterType("uid", (), parse, "a user name or uid", no_params)
