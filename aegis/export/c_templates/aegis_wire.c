/* aegis_wire.c: the aegis wire frame in C99 (see aegis_wire.h and docs/wire-format.md). */
#include "aegis_wire.h"

#include <string.h>

static const uint32_t crc_nibbles[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t aegis_wire_crc32(const uint8_t *data, size_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < length; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ crc_nibbles[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibbles[crc & 0x0Fu];
    }
    return crc ^ 0xFFFFFFFFu;
}

size_t aegis_wire_cobs_encode(const uint8_t *in, size_t length, uint8_t *out)
{
    size_t o = 1, code_at = 0, i;
    uint8_t code = 1;
    for (i = 0; i < length; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            code++;
            if (code == 0xFFu && i + 1 < length) { /* a full block: no implied zero after it */
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

int aegis_wire_cobs_decode(const uint8_t *in, size_t length, uint8_t *out, size_t capacity, size_t *decoded)
{
    size_t i = 0, o = 0;
    while (i < length) {
        uint8_t code = in[i++];
        size_t run;
        if (code == 0 || i + (size_t)(code - 1u) > length) {
            return AEGIS_WIRE_REJECT_COBS;
        }
        run = (size_t)(code - 1u);
        if (o + run > capacity) {
            return AEGIS_WIRE_REJECT_OVERSIZE;
        }
        memcpy(out + o, in + i, run);
        o += run;
        i += run;
        if (code < 0xFFu && i < length) {
            if (o >= capacity) {
                return AEGIS_WIRE_REJECT_OVERSIZE;
            }
            out[o++] = 0;
        }
    }
    *decoded = o;
    return 0;
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void write_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

int aegis_wire_check(const uint8_t *body, size_t length, aegis_wire_frame *frame)
{
    size_t payload_len;
    if (length < AEGIS_WIRE_HEADER_SIZE + AEGIS_WIRE_CRC_SIZE) {
        return AEGIS_WIRE_REJECT_SHORT;
    }
    payload_len = length - AEGIS_WIRE_HEADER_SIZE - AEGIS_WIRE_CRC_SIZE;
    if (payload_len > AEGIS_WIRE_MAX_PAYLOAD) {
        return AEGIS_WIRE_REJECT_OVERSIZE;
    }
    if (aegis_wire_crc32(body, length - AEGIS_WIRE_CRC_SIZE) != read_u32(body + length - AEGIS_WIRE_CRC_SIZE)) {
        return AEGIS_WIRE_REJECT_CRC;
    }
    if (body[0] != AEGIS_WIRE_VERSION) {
        return AEGIS_WIRE_REJECT_VERSION;
    }
    if ((body[1] & ~AEGIS_WIRE_FLAG_CDR) != 0) {
        return AEGIS_WIRE_REJECT_MALFORMED;
    }
    frame->flags = body[1];
    frame->msg_id = (uint16_t)(body[2] | (body[3] << 8));
    frame->seq = read_u32(body + 4);
    frame->stamp_ns = (uint64_t)read_u32(body + 8) | ((uint64_t)read_u32(body + 12) << 32);
    frame->payload_len = (uint16_t)payload_len;
    frame->payload = body + AEGIS_WIRE_HEADER_SIZE;
    return AEGIS_WIRE_FRAME;
}

size_t aegis_wire_encode(const aegis_wire_frame *frame, uint8_t *out, size_t capacity)
{
    uint8_t body[AEGIS_WIRE_MAX_FRAME];
    size_t length = AEGIS_WIRE_HEADER_SIZE + (size_t)frame->payload_len + AEGIS_WIRE_CRC_SIZE;
    size_t encoded;
    if (frame->payload_len > AEGIS_WIRE_MAX_PAYLOAD || capacity < length + length / 254u + 2u) {
        return 0;
    }
    body[0] = (uint8_t)AEGIS_WIRE_VERSION;
    body[1] = frame->flags;
    body[2] = (uint8_t)frame->msg_id;
    body[3] = (uint8_t)(frame->msg_id >> 8);
    write_u32(body + 4, frame->seq);
    write_u32(body + 8, (uint32_t)frame->stamp_ns);
    write_u32(body + 12, (uint32_t)(frame->stamp_ns >> 32));
    if (frame->payload_len > 0) {
        memcpy(body + AEGIS_WIRE_HEADER_SIZE, frame->payload, frame->payload_len);
    }
    write_u32(body + length - AEGIS_WIRE_CRC_SIZE, aegis_wire_crc32(body, length - AEGIS_WIRE_CRC_SIZE));
    encoded = aegis_wire_cobs_encode(body, length, out);
    out[encoded] = 0;
    return encoded + 1;
}

void aegis_wire_rx_init(aegis_wire_rx *rx)
{
    memset(rx, 0, sizeof *rx);
}

static int rejected(aegis_wire_rx *rx, int reason)
{
    rx->rejected[-reason - 1]++;
    return reason;
}

int aegis_wire_rx_push(aegis_wire_rx *rx, uint8_t byte, aegis_wire_frame *frame)
{
    size_t decoded = 0;
    int status;
    if (byte != 0) {
        if (rx->discarding) {
            return AEGIS_WIRE_NONE;
        }
        if (rx->length >= AEGIS_WIRE_MAX_ENCODED) { /* too long for any frame: drop up to the next delimiter */
            rx->length = 0;
            rx->discarding = 1;
            return rejected(rx, AEGIS_WIRE_REJECT_OVERSIZE);
        }
        rx->encoded[rx->length++] = byte;
        return AEGIS_WIRE_NONE;
    }
    if (rx->discarding || rx->length == 0) { /* the end of a dropped frame, or padding */
        rx->discarding = 0;
        return AEGIS_WIRE_NONE;
    }
    /* rx->frame holds as many bytes as rx->encoded and COBS never decodes longer: the decode has room */
    status = aegis_wire_cobs_decode(rx->encoded, rx->length, rx->frame, sizeof rx->frame, &decoded);
    rx->length = 0;
    if (status != 0) {
        return rejected(rx, status);
    }
    status = aegis_wire_check(rx->frame, decoded, frame);
    if (status != AEGIS_WIRE_FRAME) {
        return rejected(rx, status);
    }
    rx->accepted++;
    return AEGIS_WIRE_FRAME;
}
