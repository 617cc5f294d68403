"""Reads DDS user data off the network for the transport's tests: RTPS DATA payloads in UDP packets captured with a raw socket.

Needs a Linux packet socket (root or CAP_NET_RAW): :func:`capture_available` says whether this
process may open one. :class:`RtpsCapture` captures on every interface (loopback included) in a
thread; :meth:`RtpsCapture.payloads` returns the serialized payloads of the RTPS DATA submessages
seen (DDSI-RTPS 2.x, 9.4.5.3: submessage id 0x15, flag D = data present, flag Q = inline QoS
before it). Fragmented samples (DATA_FRAG) and discovery traffic are ignored.
"""

from __future__ import annotations

import socket
import struct
import threading

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
RTPS_DATA = 0x15
PID_SENTINEL = 0x0001


def capture_available() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL)).close()
    except (OSError, AttributeError):
        return False
    return True


class RtpsCapture:
    """Captures RTPS DATA payloads while running (use as a context manager)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self._socket.settimeout(0.1)
        self._payloads: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RtpsCapture:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def payloads(self) -> list[bytes]:
        return list(self._payloads)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._socket.recv(262144)
            except TimeoutError:
                continue
            except OSError:
                return
            rtps = _udp_payload(frame)
            if rtps is not None and rtps[:4] == b"RTPS":
                self._payloads += data_payloads(rtps)


def _udp_payload(frame: bytes) -> bytes | None:
    """The UDP payload of an Ethernet (or loopback) frame carrying IPv4/UDP, else None."""
    if len(frame) < 14 + 20 + 8 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    header_length = (ip[0] & 0x0F) * 4
    if ip[9] != 17:  # UDP
        return None
    total_length = struct.unpack_from("!H", ip, 2)[0]
    return ip[header_length + 8 : total_length]


def data_payloads(message: bytes) -> list[bytes]:
    """The serialized payloads of the DATA submessages of one RTPS message."""
    out = []
    offset = 20  # "RTPS", protocol version, vendor id, GUID prefix
    while offset + 4 <= len(message):
        kind, flags = message[offset], message[offset + 1]
        order = "<" if flags & 0x01 else ">"
        length = struct.unpack_from(order + "H", message, offset + 2)[0]
        body = offset + 4
        end = len(message) if length == 0 else body + length
        if kind == RTPS_DATA and flags & 0x04:
            to_inline_qos = struct.unpack_from(order + "H", message, body + 2)[0]
            cursor = body + 4 + to_inline_qos
            if flags & 0x02:  # inline QoS: a parameter list ending with PID_SENTINEL
                while cursor + 4 <= end:
                    pid, plen = struct.unpack_from(order + "HH", message, cursor)
                    cursor += 4 + plen
                    if pid == PID_SENTINEL:
                        break
            out.append(bytes(message[cursor:end]))
        offset = end
    return out
