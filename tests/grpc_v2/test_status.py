"""Every domain error becomes a gRPC status; the ones a client should retry carry when."""

from __future__ import annotations

import grpc
import pytest

from app import errors
from app.batching import MicroBatcher
from app.grpc_v2.status import CODES, grpc_error


def every_service_error() -> list[type[errors.ServiceError]]:
    found, todo = [], [errors.ServiceError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize(
    "error,code",
    [
        pytest.param(errors.BadArray("x"), grpc.StatusCode.INVALID_ARGUMENT, id="bad-array"),
        pytest.param(errors.BadRequest("x"), grpc.StatusCode.INVALID_ARGUMENT, id="bad-request"),
        pytest.param(errors.TooManyInstances("x"), grpc.StatusCode.INVALID_ARGUMENT, id="too-many"),
        pytest.param(errors.ModelNotFound("x"), grpc.StatusCode.NOT_FOUND, id="not-found"),
        pytest.param(errors.ModelNotReady("x"), grpc.StatusCode.UNAVAILABLE, id="not-ready"),
        pytest.param(errors.QueueFull("x"), grpc.StatusCode.UNAVAILABLE, id="queue-full"),
        pytest.param(errors.DeadlineExceeded("x"), grpc.StatusCode.DEADLINE_EXCEEDED, id="deadline"),
        pytest.param(errors.BodyTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED, id="too-large"),
        pytest.param(errors.ServiceError("x"), grpc.StatusCode.INTERNAL, id="internal"),
    ],
)
def test_domain_errors_map_to_status_codes(error, code):
    assert grpc_error(error).code is code


@pytest.mark.parametrize("cls", every_service_error(), ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_code_of_its_own_status(cls):
    """A new error class maps through its HTTP status; a status the table lacks would turn into INTERNAL."""
    assert cls.status == 500 or cls.status in CODES


def test_client_errors_carry_the_message_and_no_retry_hint():
    error = grpc_error(errors.BadArray("pixel values must be finite"))
    assert error.message == "pixel values must be finite" and error.trailing_metadata == ()


def test_a_full_queue_says_when_to_retry():
    batcher = MicroBatcher(lambda images: images, max_batch_size=1, max_delay_s=0, max_queue_images=1, timeout_s=1)
    with pytest.raises(errors.QueueFull) as caught:
        batcher._check_room(2)
    error = grpc_error(caught.value)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert dict(error.trailing_metadata) == {"retry-after": "1", "grpc-retry-pushback-ms": "1000"}
    assert error.message.startswith(caught.value.message) and "retry after 1 s" in error.message


def test_unavailable_without_a_retry_after_of_its_own_gets_one_second():
    error = grpc_error(errors.ModelNotReady("model 'lenet5' is not loaded yet"))
    assert dict(error.trailing_metadata) == {"retry-after": "1", "grpc-retry-pushback-ms": "1000"}


def test_a_retry_after_in_seconds_becomes_the_pushback_in_milliseconds():
    error = grpc_error(errors.QueueFull("busy", headers={"Retry-After": "2.5"}))
    assert dict(error.trailing_metadata) == {"retry-after": "2.5", "grpc-retry-pushback-ms": "2500"}
