"""Reading a whole stream back from a real server, page by page."""

from __future__ import annotations

from streamkit import AsyncClient, Event

PAGE = 1000
MAX_PAGES = 1000  # bounds the loop: a million events is far more than any test stores


async def read_all(client: AsyncClient, stream: str) -> list[Event]:
    """Every stored event of ``stream``, in seq order."""
    events: list[Event] = []
    after = 0
    for _ in range(MAX_PAGES):
        page = await client.api.read(stream, limit=PAGE, after_seq=after)
        events += page
        if len(page) < PAGE:
            return events
        after = page[-1].seq or after
    raise AssertionError(f"{stream} has more than {PAGE * MAX_PAGES} events")
