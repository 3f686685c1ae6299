"""RFC 3339 times on the wire: what ``from_time`` and a time ``start`` accept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamkit.protocol.wire import format_time, parse_time

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02t03:04:05z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.5+02:00", datetime(2026, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)),
        # JetStream's nanoseconds: kept to microseconds
        ("2026-01-02T03:04:05.123456789Z", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_with_an_offset_is_a_utc_datetime(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed is not None and parsed.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05",  # no offset: ambiguous
        "2026-01-02",
        "2026-01-02 03:04:05Z",
        "2026-02-30T00:00:00Z",
        "2026-01-02T24:00:00Z",
        "1700000000",
        "",
    ],
)
def test_anything_else_is_none(text: str) -> None:
    assert parse_time(text) is None


def test_times_past_datetimes_range_in_utc_are_its_edges() -> None:
    assert parse_time("0001-01-01T00:00:00+01:00") == datetime.min.replace(tzinfo=UTC)
    assert parse_time("9999-12-31T23:00:00-05:00") == datetime.max.replace(tzinfo=UTC)


def test_format_round_trips_and_takes_naive_as_local_time() -> None:
    aware = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
    assert format_time(aware) == "2026-01-02T08:04:05.000006Z"
    assert parse_time(format_time(aware)) == aware
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert parse_time(format_time(naive)) == naive.astimezone(UTC)
