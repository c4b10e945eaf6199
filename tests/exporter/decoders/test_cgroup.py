import os
from pathlib import Path

import pytest

from pyeunomia.exporter.decoders import decoder_types


def test_cgroup_ids_become_paths_below_the_root(tmp_path: Path):
    (tmp_path / "system.slice" / "ssh.service").mkdir(parents=True)
    decode = decoder_types()["cgroup"].make({"root": str(tmp_path)})
    assert decode(os.stat(tmp_path / "system.slice" / "ssh.service").st_ino) == "/system.slice/ssh.service"
    assert decode(os.stat(tmp_path).st_ino) == "/"
    assert decode(1) == "1"  # gone, or never there: its number
    with pytest.raises(ValueError, match="root"):
        decoder_types()["cgroup"].make({"root": 5})
