"""``python -m streamkit.cli``: the ``streamkit`` command."""

from streamkit.cli import main

raise SystemExit(main())
