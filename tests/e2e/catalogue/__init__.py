"""End-to-end tests of the catalogue's tools (src/pyeunomia/tools/): real activity, exact decoded values."""
