"""A blocking caller for fuzz runs: sends request bytes to any exesdb.v1 method and tells what
came back, as an `Outcome`.

It runs in a worker thread (hypothesis drives it there) while the servers run on the test's
event loop, so it uses grpc's blocking API on a channel of its own. Streams are read until
they have said what a client waits for (a whole read, a subscription's catch-up, the first
member), then cancelled: no call waits on a clock other than its deadline.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError, Message

from .ledger import Outcome
from .requests import Method

__all__ = ["CALL_TIMEOUT_S", "CLIENT_RECEIVE_LIMIT", "Caller"]

CALL_TIMEOUT_S = 30.0
"""A call still unanswered after this long is a hang."""
CLIENT_RECEIVE_LIMIT = 4 * 1024 * 1024
"""gRPC's default receive limit, which every response must fit (DESIGN.md)."""


def _enough(method: Method, request: Message | None, responses: list[Message]) -> bool:
    """Whether a stream has sent what a client waits for: a subscription's confirmation and,
    for a transient one, the end of its catch-up; the current members."""
    if method.name == "WatchMembers":
        return True
    if method.name == "Subscribe":
        assert responses[0].WhichOneof("message") == "confirmation", responses[0]
        assert request is not None
        if request.subscription_name not in ("", "transient"):
            return True  # a persistent consumer hears nothing more until there is something
        return responses[-1].WhichOneof("message") == "caught_up"
    return False


class Caller:
    """Sends bytes to one address; `call(method, raw)` → Outcome."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", -1),
                ("grpc.max_receive_message_length", CLIENT_RECEIVE_LIMIT),
            ],
        )

    def close(self) -> None:
        self.channel.close()

    def call(self, method: Method, raw: bytes) -> Outcome:
        try:
            request: Message | None = method.request_class.FromString(raw)
        except DecodeError:
            request = None
        outcome = Outcome(method.path, request, grpc.StatusCode.OK, "")
        try:
            if method.streaming:
                call = self.channel.unary_stream(method.path)(raw, timeout=CALL_TIMEOUT_S)
                try:
                    for message in call:
                        outcome.responses.append(method.response_class.FromString(message))
                        if _enough(method, request, outcome.responses):
                            break
                finally:
                    call.cancel()
            else:
                response = self.channel.unary_unary(method.path)(raw, timeout=CALL_TIMEOUT_S)
                outcome.responses.append(method.response_class.FromString(response))
        except grpc.RpcError as e:
            outcome.code, outcome.details = e.code(), e.details() or ""
        return outcome
