"""``python -m streamkit.server [--host H --port P --db PATH --api-key KEY]``."""

from streamkit.server.serve import main

raise SystemExit(main())
