/* aegis_wire.h: the aegis wire frame (docs/wire-format.md) in C99 for firmware: COBS, CRC-32, the 16-byte header (protocol version 2).
 *
 * No malloc and no C library beyond memcpy; one receiver is a struct the caller owns. A frame's payload
 * points into the receiver's buffer and is valid until the next byte completes another frame.
 * AEGIS_WIRE_MAX_PAYLOAD (default 256) sizes the receiver: a longer frame is dropped as oversize. */
#ifndef AEGIS_WIRE_H
#define AEGIS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define AEGIS_WIRE_VERSION 2u /* version 1's 20-byte header (payload_len, reserved) is rejected as a bad version */
#define AEGIS_WIRE_FLAG_CDR 0x01u
#define AEGIS_WIRE_HEADER_SIZE 16u
#define AEGIS_WIRE_CRC_SIZE 4u
#ifndef AEGIS_WIRE_MAX_PAYLOAD
#define AEGIS_WIRE_MAX_PAYLOAD 256u
#endif
#define AEGIS_WIRE_MAX_FRAME (AEGIS_WIRE_HEADER_SIZE + AEGIS_WIRE_MAX_PAYLOAD + AEGIS_WIRE_CRC_SIZE)
#define AEGIS_WIRE_MAX_ENCODED (AEGIS_WIRE_MAX_FRAME + AEGIS_WIRE_MAX_FRAME / 254u + 1u)

/* What aegis_wire_rx_push returns: nothing yet, a checked frame, or why a frame was dropped. */
enum {
    AEGIS_WIRE_NONE = 0,
    AEGIS_WIRE_FRAME = 1,
    AEGIS_WIRE_REJECT_COBS = -1,
    AEGIS_WIRE_REJECT_SHORT = -2,
    AEGIS_WIRE_REJECT_OVERSIZE = -3,
    AEGIS_WIRE_REJECT_CRC = -4,
    AEGIS_WIRE_REJECT_VERSION = -5,
    AEGIS_WIRE_REJECT_MALFORMED = -6
};
#define AEGIS_WIRE_REJECT_REASONS 6

typedef struct {
    uint8_t flags;
    uint16_t msg_id;
    uint32_t seq;
    uint64_t stamp_ns;
    uint16_t payload_len; /* not on the wire: the decoded frame's length less the header and the CRC */
    const uint8_t *payload;
} aegis_wire_frame;

typedef struct {
    uint8_t encoded[AEGIS_WIRE_MAX_ENCODED];
    uint8_t frame[AEGIS_WIRE_MAX_ENCODED]; /* the decoded frame (never longer than its encoding) */
    size_t length;
    int discarding;
    uint32_t accepted;
    uint32_t rejected[AEGIS_WIRE_REJECT_REASONS]; /* index -reason - 1: cobs, short, oversize, crc, version, malformed */
} aegis_wire_rx;

/* CRC-32 (IEEE 802.3, zlib's): reflected 0xEDB88320, init and final xor 0xFFFFFFFF; a 16-entry table. */
uint32_t aegis_wire_crc32(const uint8_t *data, size_t length);

/* COBS-encodes length bytes into out (room for length + length / 254 + 1); the encoded length. No delimiter. */
size_t aegis_wire_cobs_encode(const uint8_t *in, size_t length, uint8_t *out);

/* Decodes COBS (no delimiter) into out; 0 and *decoded set, or AEGIS_WIRE_REJECT_COBS / _OVERSIZE. */
int aegis_wire_cobs_decode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity, size_t *decoded);

/* Checks a decoded frame (header, payload, CRC) and fills *frame; AEGIS_WIRE_FRAME or the reason it is rejected. */
int aegis_wire_check(const uint8_t *body, size_t length, aegis_wire_frame *frame);

/* The wire bytes of *frame (COBS, then the zero delimiter) in out; their count, 0 if capacity is too small. */
size_t aegis_wire_encode(const aegis_wire_frame *frame, uint8_t *out, size_t capacity);

void aegis_wire_rx_init(aegis_wire_rx *rx);

/* Feeds one received byte; AEGIS_WIRE_FRAME with *frame filled when it completed a checked frame,
 * a negative reason when it completed a rejected one (also counted in rx->rejected), else AEGIS_WIRE_NONE. */
int aegis_wire_rx_push(aegis_wire_rx *rx, uint8_t byte, aegis_wire_frame *frame);

#endif /* AEGIS_WIRE_H */
