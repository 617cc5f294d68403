"""Links that carry wire frames between two processes: a serial line (a pseudo-terminal pair, raw, 921600 baud) and UDP.

Both have one interface, :class:`Link`, for either end of a hardware-in-the-loop run:
``send(msg_id, payload, stamp_ns, flags)`` frames and writes (returns the frame's sequence number),
``poll(timeout_s)`` returns the checked frames that arrived, and :attr:`Link.stats` counts what was
sent, received, rejected (by reason, from the :class:`~aegis.transport.framing.FrameDecoder`),
lost (gaps in the sequence numbers) and dropped as late. ``write_raw`` / ``read_raw`` move wire
bytes unchecked: what a fault-injecting proxy (:mod:`aegis.transport.faults`) forwards.

Late frames: a receiver keeps only frames newer than the newest it has seen (by sequence number)
and counts the others as ``late`` (a duplicate, or one overtaken by a later one): a node acts on
the latest message, never on an older one that arrived after it. A jump back of more than
:data:`RESYNC_WINDOW` frames is a restarted sender, not a late frame: the receiver follows it
(counted as ``resyncs``).

A pseudo-terminal does not pace bytes at its baud rate: a frame written to one end is readable at
the other at once. ``pace=True`` makes the sender hold each frame for the time its bytes take on
a UART at ``baud`` (8N1, 10 bits a byte; :func:`~aegis.transport.framing.wire_time_s`), after the
previous frame's, before writing it: the receiver then sees the frame when its last byte would have
arrived. The holding is done by a transmitter thread, as a UART's FIFO or DMA sends while the CPU goes
on: ``send`` returns at once (a sender that slept for its own bytes made the plant of `aegis hil` miss
thousands of 240 Hz ticks on a loaded machine). A write never blocks on the reader (a UART does not
either): if the pty's buffer is full the frame is dropped and counted (``tx_dropped``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import sys
import termios
import time
import threading
import tty
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import asdict, dataclass, field

from aegis.transport.framing import MAX_PAYLOAD, MAX_SEQ, Frame, FrameDecoder, encode_frame, wire_time_s

DEFAULT_BAUD = 921600
RESYNC_WINDOW = 1024
"""A frame this many sequence numbers behind the newest (or more) means the sender restarted."""
_READ_SIZE = 65536
_TTY_READ_BUFFER = 4096
"""Linux's tty line discipline holds this many received bytes (N_TTY_BUF_SIZE): a shorter read emptied it."""
_PR_SET_TIMERSLACK = 29
TX_TIMER_SLACK_NS = 1
"""The transmitter thread's timer slack (Linux): how late the kernel may end its sleeps to batch wake-ups (50 µs by default)."""
TX_WAKE_EARLY_S = 60e-6
"""The transmitter thread sleeps until this long before a frame is due and spins the rest: a sleep ends about 45 µs
after its time on the machine this was measured on (the kernel's and the virtual machine's wake-up, with 1 ns of
slack), so a sleep to the due time wrote every frame that late. The spin is bounded by this (a sleep that ends later
spins not at all) and never writes before the due time (docs/wire-format.md, "Where the round trip's time goes")."""


@dataclass
class LinkStats:
    """What one end of a link sent and received (frames and bytes); ``rejected`` comes from its decoder."""

    sent: int = 0
    sent_bytes: int = 0
    tx_dropped: int = 0
    received: int = 0
    received_bytes: int = 0
    lost: int = 0
    """Sequence numbers skipped: frames that never arrived (or not yet, if reordered)."""
    late: int = 0
    """Frames older than the newest already received: duplicates and reordered frames, dropped."""
    resyncs: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Sequence:
    newest: int | None = None

    def accept(self, seq: int, stats: LinkStats) -> bool:
        if self.newest is None:
            self.newest = seq
            return True
        if seq == 0 and self.newest != 0:  # a sender's first frame: it (re)started, however few frames it sent before
            stats.resyncs += 1
            self.newest = seq
            return True
        ahead = (seq - self.newest) & MAX_SEQ
        if ahead == 0 or ahead > MAX_SEQ - RESYNC_WINDOW:  # equal or a little behind: duplicate / overtaken
            stats.late += 1
            return False
        if ahead >= 1 << 31:  # far behind: the sender restarted its count
            stats.resyncs += 1
        else:
            stats.lost += ahead - 1
        self.newest = seq
        return True


@dataclass
class Link(ABC):
    """Wire frames over a byte channel; subclasses move the bytes (:meth:`write_raw`, :meth:`read_raw`)."""

    max_payload: int = MAX_PAYLOAD
    drop_late: bool = True
    stats: LinkStats = field(default_factory=LinkStats)
    datagrams: bool = field(default=False, init=False)
    """True where each read is one datagram (UDP): bytes left at its end are a truncated frame."""

    def __post_init__(self) -> None:
        self.decoder = FrameDecoder(self.max_payload)
        self._next_seq = 0
        self._sequence = _Sequence()

    def send(self, msg_id: int, payload: bytes, stamp_ns: int, flags: int = 0) -> int:
        """Frame ``payload`` as message ``msg_id`` and write it; the frame's sequence number."""
        seq = self._next_seq
        self._next_seq = (seq + 1) & MAX_SEQ
        data = encode_frame(msg_id, seq, stamp_ns, payload, flags)
        if self.write_raw(data):
            self.stats.sent += 1
            self.stats.sent_bytes += len(data)
        else:
            self.stats.tx_dropped += 1
        return seq

    def poll(self, timeout_s: float = 0.0) -> list[Frame]:
        """The checked frames that arrived (waiting up to ``timeout_s`` for the first bytes), late ones dropped if ``drop_late``."""
        frames: list[Frame] = []
        for chunk in self.read_raw(timeout_s):
            self.stats.received_bytes += len(chunk)
            frames += self.decoder.feed(chunk)
            if self.datagrams:
                self.decoder.end_of_datagram()
        if self.drop_late:
            frames = [f for f in frames if self._sequence.accept(f.seq, self.stats)]
        self.stats.received += len(frames)
        return frames

    @abstractmethod
    def write_raw(self, data: bytes) -> bool:
        """Put wire bytes on the link as they are; False if they could not be (dropped)."""

    @abstractmethod
    def read_raw(self, timeout_s: float = 0.0) -> list[bytes]:
        """The byte chunks that arrived (waiting up to ``timeout_s`` for the first), unchecked."""

    @abstractmethod
    def fileno(self) -> int:
        """The descriptor to wait on (select/poll) for incoming bytes."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _readable(fd: int, timeout_s: float) -> bool:
    return bool(select.select([fd], [], [], max(0.0, timeout_s))[0])


def _fine_timer_slack() -> None:
    """Let the calling thread's sleeps end when due (Linux prctl PR_SET_TIMERSLACK), not up to 50 µs later; elsewhere nothing.

    A UART's last byte leaves at its time: with the default slack every paced frame reached the other end
    about 50 µs late, twice a round trip (docs/wire-format.md, "Where the round trip's time goes").
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, TX_TIMER_SLACK_NS, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def configure_serial(fd: int, baud: int = DEFAULT_BAUD) -> None:
    """Raw mode (no echo, no line editing, no CR/LF mapping, 8 bits) at ``baud`` on a tty descriptor."""
    speed = getattr(termios, f"B{baud}", None)
    if speed is None:
        raise ValueError(f"baud {baud}: termios has no B{baud} on this system")
    tty.setraw(fd, termios.TCSANOW)
    attributes = termios.tcgetattr(fd)
    attributes[4] = attributes[5] = speed  # ispeed, ospeed
    termios.tcsetattr(fd, termios.TCSANOW, attributes)


def open_pty(baud: int = DEFAULT_BAUD) -> tuple[int, str]:
    """A pseudo-terminal pair in raw mode at ``baud``: (the controlling end's descriptor, the device path of the other end)."""
    controller, device = os.openpty()
    path = os.ttyname(device)
    configure_serial(device, baud)
    configure_serial(controller, baud)
    os.close(device)  # whoever uses the other end opens it by path; the pair lives while the controlling end is open
    return controller, path


@dataclass
class SerialLink(Link):
    """Frames on a tty descriptor (a pty end, or a real UART's /dev/tty*): raw, ``baud``, non-blocking; see the module docs for ``pace``."""

    fd: int = -1
    baud: int = DEFAULT_BAUD
    pace: bool = False
    owns_fd: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fd < 0:
            raise ValueError("SerialLink needs an open descriptor (SerialLink.open(path) opens a device)")
        os.set_blocking(self.fd, False)
        self._line_free_at = 0.0
        self._tx: deque[tuple[float, bytes]] = deque()
        self._tx_ready = threading.Condition()
        self._tx_thread: threading.Thread | None = None

    @classmethod
    def open(cls, path: str, baud: int = DEFAULT_BAUD, pace: bool = False, **kwargs: object) -> SerialLink:
        """Open a serial device (e.g. the path from :func:`open_pty`) and configure it raw at ``baud``."""
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            configure_serial(fd, baud)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd=fd, baud=baud, pace=pace, **kwargs)  # type: ignore[arg-type]

    def write_raw(self, data: bytes) -> bool:
        if self.pace:  # queued for the transmitter thread, due when its last byte would have left the UART
            now = time.perf_counter()
            self._line_free_at = max(now, self._line_free_at) + wire_time_s(len(data), self.baud)
            with self._tx_ready:
                if self._tx_thread is None:
                    self._tx_thread = threading.Thread(target=self._transmit, name="aegis-uart-tx", daemon=True)
                    self._tx_thread.start()
                self._tx.append((self._line_free_at, bytes(data)))
                self._tx_ready.notify()
            return True
        return self._write_now(data)

    def _transmit(self) -> None:
        """The transmitter thread: writes each queued frame at its due time; a frame the pty cannot take is counted dropped."""
        _fine_timer_slack()
        while True:
            with self._tx_ready:
                while not self._tx:
                    if self.fd < 0:
                        return
                    self._tx_ready.wait()
                due, data = self._tx.popleft()
            remaining = due - time.perf_counter()
            if remaining > TX_WAKE_EARLY_S:
                time.sleep(remaining - TX_WAKE_EARLY_S)  # most of the wait asleep: the other end and the simulator need the cores
            while time.perf_counter() < due:  # the last µs (at most TX_WAKE_EARLY_S): a sleep ends ~45 µs late
                pass
            if self.fd < 0:
                return
            try:
                written = self._write_now(data)
            except OSError:  # closed under us
                return
            if not written:
                self.stats.sent -= 1
                self.stats.sent_bytes -= len(data)
                self.stats.tx_dropped += 1

    def _write_now(self, data: bytes) -> bool:
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EPIPE):  # the other end is gone: a cut cable
                return False
            raise
        while written < len(data):  # the rest, without blocking on a slow reader for long
            if not select.select([], [self.fd], [], 0.01)[1]:
                return False  # the receiver's CRC will reject the part that went
            try:
                written += os.write(self.fd, data[written:])
            except (BlockingIOError, OSError):
                return False
        return True

    def read_raw(self, timeout_s: float = 0.0) -> list[bytes]:
        start = time.monotonic()
        if timeout_s > 0 and not _readable(self.fd, timeout_s):
            return []
        chunks = []
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                # nobody holds the other end (a pty's device not open yet, or its process gone): select
                # reports that as readable at once; wait out the timeout as a silent line would
                if not chunks:
                    time.sleep(max(0.0, timeout_s - (time.monotonic() - start)))
                break
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) < _TTY_READ_BUFFER:  # the line discipline's buffer is empty: another read would only raise EAGAIN
                break
        return chunks

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self._tx_thread is not None:  # let the frames already sent leave the UART (a few ms at most), then stop
            wait_s = self._line_free_at - time.perf_counter() + 0.05
            deadline = time.perf_counter() + max(0.0, min(wait_s, 1.0))
            while self._tx and time.perf_counter() < deadline:
                time.sleep(0.001)
        fd, self.fd = self.fd, -1
        if self._tx_thread is not None:
            with self._tx_ready:
                self._tx.clear()
                self._tx_ready.notify()
            self._tx_thread.join(1.0)
            self._tx_thread = None
        if self.owns_fd and fd >= 0:
            os.close(fd)


@dataclass
class UdpLink(Link):
    """Frames in UDP datagrams, one frame a datagram, from ``local`` to ``remote`` (None: to whoever sent to us last)."""

    local: tuple[str, int] = ("127.0.0.1", 0)
    remote: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.datagrams = True
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(self.local)
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()
        self._learn_remote = self.remote is None

    @property
    def port(self) -> int:
        return self.local[1]

    def write_raw(self, data: bytes) -> bool:
        if self.remote is None:
            return False
        try:
            self.sock.sendto(data, self.remote)
        except (BlockingIOError, ConnectionRefusedError):
            return False
        return True

    def read_raw(self, timeout_s: float = 0.0) -> list[bytes]:
        if timeout_s > 0 and not _readable(self.sock.fileno(), timeout_s):
            return []
        chunks = []
        while True:
            try:
                chunk, sender = self.sock.recvfrom(_READ_SIZE)
            except (BlockingIOError, ConnectionRefusedError):
                break
            if self._learn_remote:
                self.remote = sender
            chunks.append(chunk)
        return chunks

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
