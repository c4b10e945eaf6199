from pyeunomia.exporter.decoders import decoder_types


def test_errno_names_either_sign_and_ok_for_zero():
    decode = decoder_types()["errno"].make({})
    assert [decode(v) for v in (0, 2, -2, 13, 9999)] == ["ok", "ENOENT", "ENOENT", "EACCES", "9999"]
