from tests.fuzz.contract import time_limit  # noqa: F401 - the autouse fixture
