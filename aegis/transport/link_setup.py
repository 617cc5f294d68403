"""Setting up the link of a two-process run: the parent makes it (ptys or UDP ports, and the fault proxy), each child opens its end from one string.

The parent (a HIL runner) calls :func:`make_link` with the link kind and, optionally, a fault
timeline. It gets a :class:`LinkSetup`: :attr:`LinkSetup.plant` and :attr:`LinkSetup.stack` are
:class:`LinkEnd` values, each written as one command-line argument (:meth:`LinkEnd.to_arg`) for the
child that owns that end, which opens it with ``LinkEnd.from_arg(text).open()``. Descriptors a child
must inherit are in :attr:`LinkSetup.pass_fds` (``subprocess.Popen(..., pass_fds=...)``).

- serial, no faults: one pty pair; the plant inherits the controlling descriptor (``serial-fd:N``),
  the stack opens the device (``serial:/dev/pts/N``).
- serial with faults: two pty pairs; the parent's :class:`~aegis.transport.faults.FaultProxy` holds
  both controlling ends and each child opens its device.
- udp, no faults: the plant listens on a port, the stack sends there; each learns the other's address
  from what it receives (the hello exchange of :class:`~aegis.transport.wire_bridge.WireBridge` starts it).
- udp with faults: the proxy listens on two ports, one for each child, and learns their addresses
  the same way.

:meth:`LinkSetup.start` starts the proxy's thread (a no-op without faults), :meth:`LinkSetup.close`
stops it and closes what the parent holds. Kills in the timeline are the runner's (``timeline.kills()``).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Literal

from aegis.transport.faults import FaultProxy, FaultTimeline
from aegis.transport.links import DEFAULT_BAUD, Link, SerialLink, UdpLink, open_pty

LinkKind = Literal["serial", "udp"]
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LinkEnd:
    """How one child opens its end of the link: a serial device path, an inherited tty descriptor, or UDP ports."""

    kind: Literal["serial", "serial-fd", "udp"]
    path: str = ""
    fd: int = -1
    port: int = 0
    """udp: the port to listen on (0: any)."""
    peer_port: int = 0
    """udp: the port to send to (0: whoever sends here)."""

    def to_arg(self) -> str:
        if self.kind == "serial":
            return f"serial:{self.path}"
        if self.kind == "serial-fd":
            return f"serial-fd:{self.fd}"
        return f"udp:{self.port}:{self.peer_port}"

    @classmethod
    def from_arg(cls, text: str) -> LinkEnd:
        """The end an argument names (``serial:PATH``, ``serial-fd:N``, ``udp:PORT:PEER_PORT``); ValueError naming it otherwise."""
        kind, _, rest = text.partition(":")
        try:
            if kind == "serial" and rest:
                return cls("serial", path=rest)
            if kind == "serial-fd":
                return cls("serial-fd", fd=int(rest))
            if kind == "udp":
                port, _, peer = rest.partition(":")
                return cls("udp", port=int(port), peer_port=int(peer or 0))
        except ValueError:
            pass
        raise ValueError(f"link end {text!r}: expected serial:PATH, serial-fd:N or udp:PORT:PEER_PORT")

    def open(self, baud: int = DEFAULT_BAUD, pace: bool = False) -> Link:
        if self.kind == "serial":
            return SerialLink.open(self.path, baud=baud, pace=pace)
        if self.kind == "serial-fd":
            return SerialLink(fd=self.fd, baud=baud, pace=pace)
        return UdpLink(local=(LOOPBACK, self.port), remote=(LOOPBACK, self.peer_port) if self.peer_port else None)


def free_udp_port() -> int:
    """A loopback UDP port free at the moment of asking (the child binds it shortly after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class LinkSetup:
    """What the parent made: each child's end, descriptors to pass on, and the fault proxy (None without faults)."""

    plant: LinkEnd
    stack: LinkEnd
    pass_fds: tuple[int, ...] = ()
    proxy: FaultProxy | None = None
    _held: list[int] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event | None = None

    def start(self) -> None:
        """Start forwarding through the proxy (its timeline's time zero is now)."""
        if self.proxy is not None and self._thread is None:
            self._thread, self._stop = self.proxy.serve()

    def close(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(2.0)
        if self.proxy is not None:
            self.proxy.plant.close()
            self.proxy.stack.close()
        for fd in self._held:
            try:
                os.close(fd)
            except OSError:
                pass
        self._held.clear()

    def __enter__(self) -> LinkSetup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_link(kind: LinkKind, timeline: FaultTimeline | None = None, baud: int = DEFAULT_BAUD) -> LinkSetup:
    """The link between a plant process and a stack process, through a fault proxy when ``timeline`` is given."""
    if kind == "serial":
        if timeline is None:
            fd, path = open_pty(baud)
            return LinkSetup(LinkEnd("serial-fd", fd=fd), LinkEnd("serial", path=path), pass_fds=(fd,), _held=[fd])
        plant_fd, plant_path = open_pty(baud)
        stack_fd, stack_path = open_pty(baud)
        proxy = FaultProxy(SerialLink(fd=plant_fd, baud=baud), SerialLink(fd=stack_fd, baud=baud), timeline)
        return LinkSetup(LinkEnd("serial", path=plant_path), LinkEnd("serial", path=stack_path), proxy=proxy)
    if kind == "udp":
        if timeline is None:
            port = free_udp_port()
            return LinkSetup(LinkEnd("udp", port=port), LinkEnd("udp", peer_port=port))
        proxy_plant, proxy_stack = UdpLink(local=(LOOPBACK, 0)), UdpLink(local=(LOOPBACK, 0))
        proxy = FaultProxy(proxy_plant, proxy_stack, timeline)
        return LinkSetup(LinkEnd("udp", peer_port=proxy_plant.port), LinkEnd("udp", peer_port=proxy_stack.port), proxy=proxy)
    raise ValueError(f"link kind {kind!r}: expected serial or udp")
