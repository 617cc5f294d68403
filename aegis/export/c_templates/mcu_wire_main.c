/* Processor in the loop: the exported policy ${name} on the Cortex-M4F, fed and answered in aegis wire frames on UART0.
 *
 * QEMU mps2-an386's UART0 is an Arm CMSDK APB UART at 0x40004000. Each checked frame with message id
 * AEGIS_PIL_OBSERVATION and ${NAME}_INPUT_SIZE float32 (little-endian, the order of ${name}.h) is run through
 * ${name}_infer; the answer is a frame with id AEGIS_PIL_ACTION, the same seq and stamp, and a payload of
 * ${NAME}_OUTPUT_SIZE float32 then a uint32: the SysTick ticks (core clock) from reading the frame's last byte
 * to the answer's payload filled (COBS decode, CRC and header check, inference; not the answer's encoding). A frame with id AEGIS_PIL_STOP ends the run (exit 0).
 * Any other frame is ignored; rejected bytes are counted by the receiver. Built like the footprint image
 * (AEGIS_NO_IO: no C library start-up, semihosting only to exit). */
#include <stdint.h>
#include <string.h>

#include "${name}.h"
#include "aegis_wire.h"

#define AEGIS_PIL_OBSERVATION 1u
#define AEGIS_PIL_ACTION 2u
#define AEGIS_PIL_STOP 0xFF01u

#define UART0_DATA (*(volatile uint32_t *)0x40004000u)
#define UART0_STATE (*(volatile uint32_t *)0x40004004u) /* bit 0: TX full, bit 1: RX full */
#define UART0_CTRL (*(volatile uint32_t *)0x40004008u)  /* bit 0: TX enable, bit 1: RX enable */
#define UART0_BAUDDIV (*(volatile uint32_t *)0x40004010u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static void uart_write(const uint8_t *data, size_t length)
{
    size_t i;
    for (i = 0; i < length; i++) {
        while (UART0_STATE & 1u) {
        }
        UART0_DATA = data[i];
    }
}

static aegis_wire_rx rx;
static uint8_t wire[AEGIS_WIRE_MAX_ENCODED + 1];

int main(void)
{
    float input[${NAME}_INPUT_SIZE];
    float output[${NAME}_OUTPUT_SIZE];
    uint8_t payload[sizeof output + 4];
    aegis_wire_frame frame, answer;
    UART0_BAUDDIV = 27u; /* 25 MHz / 921600 */
    UART0_CTRL = 3u;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* enabled, core clock, no interrupt */
    aegis_wire_rx_init(&rx);
    for (;;) {
        uint32_t start, ticks;
        size_t n;
        if (!(UART0_STATE & 2u)) {
            continue;
        }
        start = SYST_CVR;
        if (aegis_wire_rx_push(&rx, (uint8_t)UART0_DATA, &frame) != AEGIS_WIRE_FRAME) {
            continue;
        }
        if (frame.msg_id == AEGIS_PIL_STOP) {
            return 0;
        }
        if (frame.msg_id != AEGIS_PIL_OBSERVATION || frame.payload_len != sizeof input) {
            continue;
        }
        memcpy(input, frame.payload, sizeof input);
        ${name}_infer(input, output);
        memcpy(payload, output, sizeof output);
        answer.flags = 0u;
        answer.msg_id = AEGIS_PIL_ACTION;
        answer.seq = frame.seq;
        answer.stamp_ns = frame.stamp_ns;
        answer.payload_len = (uint16_t)sizeof payload;
        answer.payload = payload;
        ticks = (start - SYST_CVR) & 0x00FFFFFFu;
        memcpy(payload + sizeof output, &ticks, sizeof ticks); /* encoding itself is not in the count: it needs the count */
        n = aegis_wire_encode(&answer, wire, sizeof wire);
        uart_write(wire, n);
    }
}
