/* A host tool around aegis_wire.c for the tests: reads a byte stream on stdin and prints, per checked frame,
 *   F msg_id seq stamp_ns flags payload-hex
 *   E the frame re-encoded by aegis_wire_encode, hex
 * and at the end the receiver's counts: R cobs short oversize crc version malformed accepted */
#include <stdio.h>

#include "aegis_wire.h"

static void hex(const uint8_t *data, size_t length)
{
    size_t i;
    if (length == 0) {
        fputs("-", stdout);
    }
    for (i = 0; i < length; i++) {
        printf("%02x", data[i]);
    }
}

int main(void)
{
    static aegis_wire_rx rx;
    static uint8_t out[AEGIS_WIRE_MAX_ENCODED + 1];
    aegis_wire_frame frame;
    int c;
    aegis_wire_rx_init(&rx);
    while ((c = getchar()) != EOF) {
        if (aegis_wire_rx_push(&rx, (uint8_t)c, &frame) == AEGIS_WIRE_FRAME) {
            size_t n = aegis_wire_encode(&frame, out, sizeof out);
            printf("F %u %lu %llu %u ", (unsigned)frame.msg_id, (unsigned long)frame.seq, (unsigned long long)frame.stamp_ns,
                   (unsigned)frame.flags);
            hex(frame.payload, frame.payload_len);
            fputs("\nE ", stdout);
            hex(out, n);
            fputs("\n", stdout);
        }
    }
    printf("R %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)rx.rejected[0], (unsigned long)rx.rejected[1],
           (unsigned long)rx.rejected[2], (unsigned long)rx.rejected[3], (unsigned long)rx.rejected[4],
           (unsigned long)rx.rejected[5], (unsigned long)rx.accepted);
    return 0;
}
