"""The one retry policy: what each kind of failure says, and what resend-safe callers add."""

from __future__ import annotations

import pytest

from streamkit import errors
from streamkit._http.retry import Backoff, retriable
from streamkit._http.transport import api_error


@pytest.mark.parametrize(
    ("failure", "alone", "resend_safe"),
    [
        (errors.ConnectError("refused"), True, True),
        (errors.TimeoutError("stalled"), True, True),
        (api_error(429, b"", "1"), True, True),
        (api_error(503, b"", None), True, True),
        (api_error(502, b"<html>", None), True, True),
        (api_error(504, b"", None), True, True),
        (api_error(507, b"", "2"), True, True),
        (api_error(500, b"", None), False, True),
        (errors.DecodeError("a proxy's page"), False, True),
        (api_error(400, b"", None), False, False),
        (api_error(401, b"", None), False, False),
        (api_error(404, b"", None), False, False),
        (api_error(413, b"", None), False, False),
        (api_error(422, b"", None), False, False),
        (errors.ClientClosed("closed"), False, False),
        (ValueError("a bug"), False, False),
    ],
    ids=repr,
)
def test_who_retries_what(failure: BaseException, alone: bool, resend_safe: bool) -> None:
    assert retriable(failure) is alone
    assert retriable(failure, resend_safe=True) is resend_safe


def test_gateway_failures_are_server_errors() -> None:
    assert isinstance(api_error(502, b"", None), errors.GatewayError)
    assert isinstance(api_error(502, b"", None), errors.ServerError)


def test_backoff_grows_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0)
    assert all(backoff.delay() <= 2**n for n in range(3))
    assert backoff.failures == 3
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.delay(api_error(429, b"", "5")) >= 5.0
