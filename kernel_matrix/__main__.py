"""`python -m kernel_matrix`: see host.py."""

from .host import main

raise SystemExit(main())
