"""``python -m anyipc.cli``: the ``anyipc`` command."""

from anyipc.cli import main

raise SystemExit(main())
