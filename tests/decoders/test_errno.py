"""errno numbers by name."""

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.errno import errno_name


def test_names_positive_negative_and_unknown():
    assert errno_name(2) == "ENOENT"
    assert errno_name(-13) == "EACCES"
    assert errno_name(99999) == "99999"

def test_errno_names_either_sign_and_ok_for_zero():
    decode = DECODERS["errno"].make({})
    assert [decode(v) for v in (0, 2, -2, 13, 9999)] == ["ok", "ENOENT", "ENOENT", "EACCES", "9999"]
