import os

from pyeunomia.exporter.decoders import decoder_types


def test_open_flags_as_names():
    decode = decoder_types()["open_flags"].make({})
    assert decode(os.O_WRONLY | os.O_CREAT | os.O_TRUNC) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert decode(os.O_RDONLY | os.O_CLOEXEC) == "O_RDONLY|O_CLOEXEC"
