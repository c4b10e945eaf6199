from pyeunomia.decoders import DECODERS


def test_result_is_ok_for_descriptors_and_the_errno_for_failures():
    decode = DECODERS["result"].make({})
    assert [decode(v) for v in (0, 3, 1000, -2, -13)] == ["ok", "ok", "ok", "ENOENT", "EACCES"]
