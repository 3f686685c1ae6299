"""`ThrottledLog`: an event a client can repeat at any rate is logged once per interval, counted."""

from __future__ import annotations

import logging
import time

import pytest

from streamkit.server.logs import ThrottledLog


def test_a_flood_of_events_is_one_line_then_one_line_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.ops.throttled")
    throttled = ThrottledLog(logger, interval=0.2)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for _ in range(10_000):
            throttled.warning("cannot accept connections: %s", "EMFILE")
        assert [r.getMessage() for r in caplog.records] == ["cannot accept connections: EMFILE"]
        time.sleep(0.25)  # the interval is over: the next event is logged, with the count
        throttled.warning("cannot accept connections: %s", "EMFILE")
    assert len(caplog.records) == 2
    assert (
        caplog.records[1]
        .getMessage()
        .startswith("cannot accept connections: EMFILE (and 9999 more like it in the last ")
    )
    assert caplog.records[1].levelno == logging.WARNING
    assert throttled.count == 10_001
