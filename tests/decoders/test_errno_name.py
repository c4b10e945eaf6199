"""errno numbers by name."""

from pyeunomia.decoders.errno_name import errno_name


def test_names_positive_negative_and_unknown():
    assert errno_name(2) == "ENOENT"
    assert errno_name(-13) == "EACCES"
    assert errno_name(99999) == "99999"
