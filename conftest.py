"""Test-session root: pytest puts this folder on ``sys.path``, so the suite's shared
helpers import as a package (``from tests.http_api import Api``)."""
