"""Engine events to automation, by either transport the real CLI speaks.

`--event-log tcp://HOST:PORT` (CLIs newer than 3.205): a client-streaming call of
`pulumirpc.Events/StreamEvents`, one `EventRequest{event: <JSON>}` per engine event.
`--event-log FILE` (older CLIs): JSON lines appended to the file, closed by a cancelEvent.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any


class Events:
    """Numbered engine events written to the transport `target` names (or dropped)."""

    def __init__(self, target: str | None) -> None:
        self.sequence = 0
        self.lock = threading.Lock()
        self.file = None
        self.stream: _GrpcStream | None = None
        if target and target.startswith("tcp://"):
            self.stream = _GrpcStream(target.removeprefix("tcp://"))
        elif target:
            self.file = open(target, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, **event: Any) -> None:
        with self.lock:
            self.sequence += 1
            line = json.dumps({"sequence": self.sequence, "timestamp": int(time.time()), **event})
            if self.file:
                self.file.write(line + "\n")
                self.file.flush()
            elif self.stream:
                self.stream.send(line)

    def close(self) -> None:
        self.write(cancelEvent={})
        if self.file:
            self.file.close()
        if self.stream:
            self.stream.close()


class _GrpcStream:
    """One StreamEvents call fed from a queue by the update's threads."""

    def __init__(self, address: str) -> None:
        import grpc
        from pulumi.runtime.proto import events_pb2, events_pb2_grpc

        self.request = events_pb2.EventRequest
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.channel = grpc.insecure_channel(address)
        stub = events_pb2_grpc.EventsStub(self.channel)
        self.thread = threading.Thread(target=stub.StreamEvents, args=(self._requests(),),
                                       daemon=True)
        self.thread.start()

    def _requests(self) -> Iterator[Any]:
        while (line := self.queue.get()) is not None:
            yield self.request(event=line)

    def send(self, line: str) -> None:
        self.queue.put(line)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(10)
        self.channel.close()
