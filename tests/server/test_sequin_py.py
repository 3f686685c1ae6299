"""The unmodified sequin-py client against ``python -m streamkit.server`` in a subprocess."""

from __future__ import annotations

import uuid

import pytest
from sequin.client import Client

from tests.server_process import ServerProcess


@pytest.fixture
def sequin(server_process: ServerProcess) -> Client:
    server_process.start()
    return Client(server_process.url)


def test_sequin_py_round_trip(sequin: Client) -> None:
    stream, error = sequin.create_stream("test-stream")
    assert error is None, error
    assert stream["name"] == "test-stream"
    assert stream["stats"]["message_count"] == 0

    _, error = sequin.create_stream("test-stream")
    assert error is not None and error["status"] == 422

    consumer, error = sequin.create_consumer("test-stream", "test-consumer", "test.>")
    assert error is None, error
    assert consumer["name"] == "test-consumer"
    assert consumer["kind"] == "pull"

    res, error = sequin.send_message("test-stream", "test.1", "Hello, Sequin!")
    assert error is None, error
    assert res["published"] == 1

    res, error = sequin.send_messages(
        "test-stream",
        [{"key": "test.2", "data": "two"}, {"key": "test.3", "data": "three"}],
    )
    assert error is None and res["published"] == 2

    message, error = sequin.receive_message("test-stream", "test-consumer")
    assert error is None, error
    assert message["message"]["key"] == "test.1"
    assert message["message"]["data"] == "Hello, Sequin!"
    assert message["message"]["stream_id"] == stream["id"]
    uuid.UUID(message["message"]["stream_id"])
    res, error = sequin.ack_message("test-stream", "test-consumer", message["ack_id"])
    assert error is None and res == {"success": True}

    messages, error = sequin.receive_messages("test-stream", "test-consumer", {"batch_size": 10})
    assert error is None
    assert [m["message"]["key"] for m in messages] == ["test.2", "test.3"]

    res, error = sequin.nack_message("test-stream", "test-consumer", messages[0]["ack_id"])
    assert error is None and res == {"success": True}
    again, error = sequin.receive_messages("test-stream", "test-consumer")
    assert error is None
    assert [m["message"]["key"] for m in again] == ["test.2"]
    res, error = sequin.ack_messages(
        "test-stream", "test-consumer", [again[0]["ack_id"], messages[1]["ack_id"]]
    )
    assert error is None

    nothing, error = sequin.receive_message("test-stream", "test-consumer")
    assert (nothing, error) == (None, None)

    res, error = sequin.nack_messages("test-stream", "test-consumer", ["unknown"])
    assert error is None

    res, error = sequin.delete_consumer("test-stream", "test-consumer")
    assert error is None and res == {"id": consumer["id"], "deleted": True}
    res, error = sequin.delete_stream(stream["id"])
    assert error is None and res == {"id": stream["id"], "deleted": True}


def test_sequin_py_errors(sequin: Client) -> None:
    _, error = sequin.delete_stream("missing")
    assert error == {
        "status": 404,
        "summary": "Not found: No `stream` found matching the provided ID or name",
    }
    sequin.create_stream("s")
    _, error = sequin.delete_consumer("s", "missing")
    assert error == {
        "status": 404,
        "summary": "Not found: No `consumer` found matching the provided ID or name",
    }
    _, error = sequin.send_message("s", "bad key", "x")
    assert error is not None and error["status"] == 422
    assert error["summary"] == "Validation failed"
    _, error = sequin.send_message("s", "k", {"not": "a string"})
    assert error is not None and error["status"] == 422
    stream, error = sequin.create_stream(
        "opts", {"one_message_per_key": True, "process_unmodified": False, "max_storage_gb": 10}
    )
    assert error is None and stream["name"] == "opts"
    consumer, error = sequin.create_consumer(
        "opts", "c", "a.*", {"ack_wait_ms": 60000, "max_ack_pending": 5000, "max_deliver": 3}
    )
    assert error is None
    assert (consumer["ack_wait_ms"], consumer["max_ack_pending"], consumer["max_deliver"]) == (
        60000,
        5000,
        3,
    )
