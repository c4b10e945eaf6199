"""open(2) flags as text and back, with this machine's values."""

import os

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.open_flags import open_flags_text, parse_open_flag


def test_text_of_common_combinations():
    assert open_flags_text(os.O_RDONLY) == "O_RDONLY"
    assert open_flags_text(os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC) == "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
    assert open_flags_text(os.O_RDWR | os.O_SYNC) == "O_RDWR|O_SYNC"  # not also O_DSYNC
    assert open_flags_text(os.O_WRONLY | os.O_TMPFILE) == "O_WRONLY|O_TMPFILE"  # not also O_DIRECTORY
    assert open_flags_text(3) == "03"
    assert open_flags_text(1 << 30).endswith("|010000000000")


@pytest.mark.parametrize(("text", "value"), [("O_CREAT", os.O_CREAT), ("creat", os.O_CREAT), ("O_RDONLY", 0),
                                              ("wronly", os.O_WRONLY), ("0100", 0o100), ("0x40", 0x40), ("64", 64)])
def test_parse(text, value):
    assert parse_open_flag(text) == value


def test_parse_refuses_unknown_names():
    with pytest.raises(ValueError, match="unknown open flag 'O_BOGUS'"):
        parse_open_flag("O_BOGUS")


def test_open_flags_as_names():
    decode = DECODERS["open_flags"].make({})
    assert decode(os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert decode(os.O_RDONLY | os.O_CLOEXEC) == "O_RDONLY|O_CLOEXEC"
