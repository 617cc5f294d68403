"""The DDS transport: aegis messages on ROS 2's wire through cyclonedds, no rclpy: what a ROS 2 node on the same domain reads and sends.

What goes on the wire is what a ROS 2 node using rmw_cyclonedds (ROS 2's Cyclone DDS middleware)
puts there:

- topic ``rt/<namespace>/<topic>`` and type ``<pkg>::msg::dds_::<Type>_``
  (:mod:`aegis.transport.ros_names`);
- payload: the message's CDR as rosbags' ``serialize_cdr`` writes it from the ROS 2 message
  definitions (an Odometry's written and read directly, the same bytes: :mod:`aegis.transport.odometry_cdr`; the 4-byte encapsulation header ``00 01 00 00``, CDR_LE, i.e. XCDR1
  little-endian, then the fields aligned from after the header), padded with zero bytes to a
  multiple of 4 as rmw_cyclonedds pads it; data representation XCDR1 only, as rmw_cyclonedds's
  type support allows;
- QoS from :class:`aegis.ros_shell.QosSettings` (the same the rclpy adapter uses): KEEP_LAST(depth),
  RELIABLE (unbounded blocking time) or BEST_EFFORT, VOLATILE, automatic liveliness, no
  auto-dispose; USER_DATA ``typehash=RIHS01_...;`` on Jazzy (the type hash rosbags computes),
  and ``enclave=/;`` on the participant.

How raw ROS 2 types get into cyclonedds-python: the topic's type is an ``IdlStruct`` generated at
run time from the rosbags definition (:mod:`aegis.transport.idl`): it gives DDS the ROS 2 type name
and a truthful XTypes description for discovery. The samples themselves bypass that class: the
writer hands rosbags' CDR bytes to cyclonedds's C layer (``ddspy_write``, what
``DataWriter.write`` calls after serialising) and the reader takes the received bytes as they came
(``ddspy_take``) and lets rosbags deserialise them. So the payload is rosbags' bytes by
construction, the same encoder that writes aegis's rosbag2 logs, and a message costs one
rosbags serialisation instead of a conversion into cyclonedds's Python objects plus its own
(slower, pure Python) serialiser. The tests check both encoders agree byte for byte anyway.

Reference: rclpy and a ROS 2 installation cannot be installed here, so conformance is checked
against the published conventions (rmw_cyclonedds's naming, QoS and encapsulation, rmw_dds_common's
USER_DATA) and the rosbags definitions of the ROS 2 messages, not against a running ROS 2 node.

Without cyclonedds installed, creating a transport raises :class:`DdsUnavailable` saying what to
install (``pip install 'aegis[dds]'``); importing this module needs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rosbags.serde import SerdeError

from aegis.msgs.ros_types import RosbagsTypes, rosbags_types
from aegis.node import Port
from aegis.ros_shell.wiring import QosSettings, publisher_qos, subscription_qos
from aegis.transport.idl import idl_type
from aegis.transport.ros_names import (
    DISTROS_WITH_TYPE_HASH,
    check_domain_id,
    dds_topic_name,
    dds_type_name,
    domain_id_from_env,
    participant_user_data,
    type_hash_user_data,
)

CYCLONEDDS_REQUIREMENT = "cyclonedds>=11.0.1,<12"
"""Below 12: the transport writes and takes raw samples through cyclonedds._clayer (ddspy_write, ddspy_take), not a public API."""
INSTALL_HINT = f"pip install 'aegis[dds]'  (or: pip install '{CYCLONEDDS_REQUIREMENT}')"


class DdsUnavailable(RuntimeError):
    """cyclonedds is not installed (or too old): the message says what to install."""


def require_cyclonedds() -> None:
    """Import the pieces of cyclonedds the transport uses; DdsUnavailable with the install line if it cannot."""
    try:
        import cyclonedds.domain  # noqa: F401
        from cyclonedds._clayer import ddspy_take, ddspy_write  # noqa: F401
    except ImportError as exc:
        raise DdsUnavailable(f"the DDS transport needs the cyclonedds Python package ({exc}); install it with: {INSTALL_HINT}") from exc


MsgType = type | str
"""What an endpoint carries: an aegis message class (ROS_TYPE, to_ros, from_ros) or a ROS type name ("rosgraph_msgs/msg/Clock") for rosbags messages."""


class _Codec:
    """Messages of one endpoint <-> CDR bytes: an aegis class through its ROS message, or rosbags messages as they are."""

    def __init__(self, types: RosbagsTypes, msg_type: MsgType) -> None:
        self.types = types
        if isinstance(msg_type, str):
            self.ros_type, self.msg_class = msg_type, None
        elif isinstance(getattr(msg_type, "ROS_TYPE", None), str):
            self.ros_type, self.msg_class = msg_type.ROS_TYPE, msg_type
        else:
            raise TypeError(f"{msg_type!r} is neither an aegis message class (with ROS_TYPE) nor a ROS type name")
        types.lookup(self.ros_type)  # refuses a type this distro lacks, naming it
        self._serialize = types.typestore.serialize_cdr
        self._deserialize = types.typestore.deserialize_cdr
        self._direct = _direct_codec(self.msg_class)

    def encode(self, msg: Any) -> bytes:
        if self.msg_class is not None:
            if not isinstance(msg, self.msg_class):
                raise TypeError(f"expected a {self.msg_class.__name__}, got {type(msg).__name__}")
            if self._direct is not None:
                return self._direct[0](msg)
            msg = msg.to_ros(self.types)
        return pad4(bytes(self._serialize(msg, self.ros_type)))

    def decode(self, data: bytes) -> Any:
        if self._direct is not None:
            msg = self._direct[1](data)
            if msg is not None:
                return msg
        ros_msg = self._deserialize(data, self.ros_type)
        return ros_msg if self.msg_class is None else self.msg_class.from_ros(ros_msg)


def _direct_codec(msg_class: type | None) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]] | None:
    """(encode, decode) straight between a message class and its CDR, where one exists (the 1 kHz odometry:
    aegis.transport.odometry_cdr, checked against rosbags byte for byte); None: through rosbags' message objects."""
    from aegis.msgs import RobotState

    if msg_class is RobotState:
        from aegis.transport.odometry_cdr import decode_odometry, encode_odometry

        return encode_odometry, decode_odometry
    return None


CdrCodec = _Codec
"""Public name of the codec: the serial/UDP wire (aegis.transport.wire_messages) carries the same CDR for types without a fixed layout."""


def pad4(payload: bytes) -> bytes:
    """``payload`` with zero bytes appended up to a multiple of 4, as rmw_cyclonedds and cyclonedds send a sample."""
    extra = -len(payload) % 4
    return payload + b"\0" * extra if extra else payload


def dds_qos(settings: QosSettings, *, writer: bool, user_data: bytes = b"") -> Any:
    """The cyclonedds Qos of an endpoint with ``settings``, set as rmw_cyclonedds sets a ROS 2 endpoint's."""
    from cyclonedds.qos import Policy, Qos
    from cyclonedds.util import duration

    if settings.history != "keep_last" or settings.durability != "volatile":
        raise ValueError(f"unsupported QoS {settings}: the DDS transport speaks keep_last + volatile")
    if settings.reliability == "reliable":
        reliability = Policy.Reliability.Reliable(max_blocking_time=duration(infinite=True))
    elif settings.reliability == "best_effort":
        reliability = Policy.Reliability.BestEffort
    else:
        raise ValueError(f"unknown reliability {settings.reliability!r}")
    policies = [
        Policy.History.KeepLast(settings.depth),
        reliability,
        Policy.Durability.Volatile,
        Policy.Liveliness.Automatic(lease_duration=duration(infinite=True)),
        Policy.DataRepresentation(use_cdrv0_representation=True),
        Policy.Userdata(data=user_data),
    ]
    if writer:
        policies.append(Policy.WriterDataLifecycle(autodispose=False))
    return Qos(*policies)


class DdsTransport:
    """One DDS participant on a domain, with ROS 2's names under one namespace; makes publishers and subscriptions.

    ``domain_id`` None reads ``ROS_DOMAIN_ID`` (default 0) as ROS 2 does; ``namespace`` is the
    hw_config's ``ros.namespace`` ("" or "/robot1"); ``distro`` picks the rosbags message
    definitions (and whether endpoints announce type hashes). Close it (or use ``with``) to leave
    the domain; its endpoints stop with it.
    """

    def __init__(self, domain_id: int | None = None, namespace: str = "", distro: str = "jazzy") -> None:
        require_cyclonedds()
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.qos import Policy, Qos

        self.domain_id = domain_id_from_env() if domain_id is None else check_domain_id(domain_id)
        dds_topic_name(namespace, "/check")  # refuses a malformed namespace before joining the domain
        self.namespace = namespace
        self.types = rosbags_types(distro)
        self.participant = DomainParticipant(self.domain_id, qos=Qos(Policy.Userdata(data=participant_user_data())))
        self._topics: dict[str, tuple[Any, str]] = {}
        self._endpoints: list[_Endpoint] = []
        """Every publisher and subscription made here: they live until closed, or until the transport is."""
        self._closed = False

    @classmethod
    def from_config(cls, config: Any, domain_id: int | None = None) -> DdsTransport:
        """A transport for a loaded hw_config: its ``ros.namespace`` and ``ros.distro``."""
        return cls(domain_id=domain_id, namespace=config.ros.namespace, distro=config.ros.distro)

    def publisher(self, topic: str, msg_type: MsgType, qos: QosSettings | None = None) -> DdsPublisher:
        """A publisher of ``msg_type`` on aegis ``topic`` ("/odom"); default QoS: reliable, depth 1."""
        return DdsPublisher(self, topic, _Codec(self.types, msg_type), qos or QosSettings(depth=1, reliability="reliable"))

    def subscription(self, topic: str, msg_type: MsgType, qos: QosSettings | None = None) -> DdsSubscription:
        """A subscription to ``msg_type`` on aegis ``topic``; default QoS: best effort, depth 1."""
        return DdsSubscription(self, topic, _Codec(self.types, msg_type), qos or QosSettings(depth=1, reliability="best_effort"))

    def publisher_for(self, port: Port, topic: str | None = None) -> DdsPublisher:
        """The publisher of an output ``port`` (on ``topic``, default the port's), with the ROS 2 adapter's QoS."""
        return self.publisher(topic or _single_topic(port), port.msg_type, publisher_qos(port))

    def subscription_for(self, port: Port, topic: str | None = None) -> DdsSubscription:
        """The subscription of an input ``port`` (on ``topic``, default the port's), with the ROS 2 adapter's QoS."""
        return self.subscription(topic or _single_topic(port), port.msg_type, subscription_qos(port))

    def _topic(self, topic: str, ros_type: str) -> tuple[Any, str]:
        from cyclonedds.topic import Topic

        name = dds_topic_name(self.namespace, topic)
        known = self._topics.get(name)
        if known is not None:
            if known[1] != ros_type:
                raise ValueError(f"topic {topic} ({name}) already carries {known[1]} here, not {ros_type}")
            return known
        entry = (Topic(self.participant, name, idl_type(self.types, ros_type)), ros_type)
        self._topics[name] = entry
        return entry

    def _user_data(self, ros_type: str) -> bytes:
        if self.types.distro not in DISTROS_WITH_TYPE_HASH:
            return b""
        return type_hash_user_data(self.types.typestore.hash_rihs01(ros_type))

    def close(self) -> None:
        """Leave the domain: delete every reader and writer made here, their topics, then the participant."""
        if self._closed:
            return
        self._closed = True
        for endpoint in list(self._endpoints):
            endpoint.close()
        for topic, _ in self._topics.values():
            _delete(topic)
        self._topics.clear()
        _delete(self.participant)

    def __enter__(self) -> DdsTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _single_topic(port: Port) -> str:
    if port.many:
        raise ValueError(f"port {port.name!r} is a many port: name the topic")
    return port.topic  # type: ignore[return-value]


class _Endpoint:
    def __init__(self, transport: DdsTransport, topic: str, codec: _Codec, qos: QosSettings) -> None:
        self.transport = transport
        self.topic = topic
        self.codec = codec
        self.qos = qos
        self.ros_type = codec.ros_type
        self.dds_topic = dds_topic_name(transport.namespace, topic)
        self.dds_type = dds_type_name(codec.ros_type)
        self._dds_topic_entity, _ = transport._topic(topic, codec.ros_type)

    def close(self) -> None:
        """Delete this reader or writer now (the transport's close deletes every one)."""
        if self in self.transport._endpoints:
            self.transport._endpoints.remove(self)
        for name in ("_waitset", "_condition", "reader", "writer"):
            entity = getattr(self, name, None)
            if entity is not None:
                _delete(entity)


def _delete(entity: Any) -> None:
    """Delete a cyclonedds entity now, through cyclonedds's own deleter (which then forgets it, so garbage collection does
    not delete its handle a second time)."""
    entity.__del__()


class DdsPublisher(_Endpoint):
    """Writes messages of one type to one topic: ``publish(msg)`` (an aegis message, or a rosbags one for a ROS type name)."""

    def __init__(self, transport: DdsTransport, topic: str, codec: _Codec, qos: QosSettings) -> None:
        super().__init__(transport, topic, codec, qos)
        from cyclonedds._clayer import ddspy_write
        from cyclonedds.pub import DataWriter

        user_data = transport._user_data(codec.ros_type)
        self.writer = DataWriter(transport.participant, self._dds_topic_entity, qos=dds_qos(qos, writer=True, user_data=user_data))
        self._write = ddspy_write
        self._ref = self.writer._ref
        self.published = 0
        transport._endpoints.append(self)

    def publish(self, msg: Any) -> None:
        """Serialise ``msg`` to CDR and write it."""
        self.publish_cdr(self.codec.encode(msg))

    def publish_cdr(self, payload: bytes) -> None:
        """Write a CDR payload as it is (encapsulation header included; padded to 4 bytes if it is not)."""
        if len(payload) % 4:
            payload = pad4(payload)
        ret = self._write(self._ref, payload)
        if ret < 0:
            raise RuntimeError(f"DDS write on {self.dds_topic} failed (cyclonedds return code {ret})")
        self.published += 1

    def matched(self) -> int:
        """How many readers (any process on the domain) this writer is matched with now."""
        return len(self.writer.get_matched_subscriptions())


class DdsSubscription(_Endpoint):
    """Reads messages of one type from one topic: ``take()`` the ones that arrived (non-blocking), ``wait(timeout_s)`` for more.

    A payload that does not decode (a foreign publisher's message aegis cannot read, such as a
    Float64MultiArray in another layout) is not raised: it is counted in ``rejected`` with the
    reason in ``last_rejection``, and the rest are delivered.
    """

    def __init__(self, transport: DdsTransport, topic: str, codec: _Codec, qos: QosSettings) -> None:
        super().__init__(transport, topic, codec, qos)
        from cyclonedds._clayer import ddspy_take
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.sub import DataReader

        user_data = transport._user_data(codec.ros_type)
        self.reader = DataReader(transport.participant, self._dds_topic_entity, qos=dds_qos(qos, writer=False, user_data=user_data))
        self._take = ddspy_take
        self._ref = self.reader._ref
        self._mask = SampleState.Any | ViewState.Any | InstanceState.Any
        self._condition = ReadCondition(self.reader, self._mask)
        self._waitset = WaitSet(transport.participant)
        self._waitset.attach(self._condition)
        self.received = 0
        self.rejected = 0
        self.last_rejection = ""
        transport._endpoints.append(self)

    def take_cdr(self, max_samples: int | None = None) -> list[bytes]:
        """The payloads received since the last take, oldest first (at most ``max_samples``, default the QoS depth)."""
        result = self._take(self._ref, self._mask, max_samples or self.qos.depth)
        if isinstance(result, int):
            raise RuntimeError(f"DDS take on {self.dds_topic} failed (cyclonedds return code {result})")
        return [data for data, info in result if info.valid_data]

    def take(self, max_samples: int | None = None) -> list[Any]:
        """The messages received since the last take, decoded, oldest first (those that do not decode are counted in ``rejected``)."""
        out = []
        for data in self.take_cdr(max_samples):
            try:
                out.append(self.codec.decode(data))
            except (SerdeError, ValueError, KeyError, IndexError) as exc:
                self.rejected += 1
                self.last_rejection = f"{self.dds_topic}: {type(exc).__name__}: {exc}"
        self.received += len(out)
        return out

    def wait(self, timeout_s: float) -> bool:
        """Block until a sample is waiting or ``timeout_s`` passes; True if one is waiting."""
        return bool(self._waitset.wait(max(0, int(timeout_s * 1e9))))

    def matched(self) -> int:
        """How many writers (any process on the domain) this reader is matched with now."""
        return len(self.reader.get_matched_publications())


def wait_for_match(endpoints: list[Any], timeout_s: float = 5.0, count: int = 1, sleep: Callable[[float], None] | None = None) -> bool:
    """Poll until every endpoint is matched with at least ``count`` peers or ``timeout_s`` passes; True if all are."""
    import time

    sleep = sleep or time.sleep
    deadline = time.monotonic() + timeout_s
    while True:
        if all(endpoint.matched() >= count for endpoint in endpoints):
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(0.01)
