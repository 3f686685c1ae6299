"""``python -m tests.ops.limited_server SOFT HARD [serve options]``: a server under a nofile limit.

Sets ``RLIMIT_NOFILE`` to (SOFT, HARD) in the process itself, then runs
``streamkit.server`` as usual, as a service manager with ``LimitNOFILE`` would.
`LimitedServerProcess` is `ServerProcess` starting it this way.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]


class LimitedServerProcess(ServerProcess):
    """A `ServerProcess` whose nofile limit is (``soft``, ``hard``) from its start."""

    def __init__(self, db: Path, *, soft: int, hard: int, **kwargs: Any) -> None:
        super().__init__(db, **kwargs)
        self.soft = soft
        self.hard = hard

    def spawn(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("STREAMKIT_API_KEY", None)
        command = [sys.executable, "-m", "tests.ops.limited_server", str(self.soft), str(self.hard)]
        command += ["--port", str(self.port), "--db", str(self.db), *self.extra]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self.starts += 1

    def open_file_limits(self) -> tuple[int, int]:
        """The process's (soft, hard) nofile limit now, from ``/proc/<pid>/limits``."""
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
        raise RuntimeError("no 'Max open files' line")


def main(argv: list[str]) -> int:
    soft, hard = int(argv[0]), int(argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    from streamkit.server.serve import main as serve

    return serve(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
