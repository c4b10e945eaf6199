"""Compile once, run everywhere, proven: the kernel matrix behind `make test-kernels`.

Packages built once on the host with this project's `ecc` run unchanged in qemu
guests booted with Debian's own cloud kernels (5.10, 6.1, 6.12), each guest a
small Debian root plus the project's wheel, so the console scripts run there
exactly as a user would run them. matrix.py is the table; host.py drives it;
guest.py runs in the guests.
"""
