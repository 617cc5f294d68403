/* Processor in the loop: the exported policy ${name} (and, with AEGIS_PIL_QP, the safety filter's QP ${qp}) on the
 * Cortex-M4F, fed and answered in aegis wire frames on UART0.
 *
 * QEMU mps2-an386's UART0 is an Arm CMSDK APB UART at 0x40004000. Requests and answers (docs/wire-format.md):
 *   id 1 observation: ${NAME}_INPUT_SIZE float32 (the order of ${name}.h)  -> id 2: ${NAME}_OUTPUT_SIZE float32, uint32 ticks
 *   id 3 QP problem: nominal[m], a[K][m] (row by row), b[K], as doubles     -> id 4: u[m], slack (doubles), uint32 solved,
 *                                                                              uint32 solver iterations, uint32 ticks
 *   id 5 QP problem (AEGIS_PIL_DUAL): nominal[m], a[K][m], b[K], as float32 -> id 6: u[m], slack (float32), uint32 solved,
 *                                                                              uint32 active-set steps, uint32 ticks
 *   id 7 one tick (AEGIS_PIL_DUAL): uint8 layout 1, uint8 n, uint8 N, uint8 m, float32 observation[n], a[N][m], b[N]
 *                                  -> id 8: uint8 layout 1, uint8 p, uint8 m, uint8 solved, float32 action[p], u[m],
 *                                     slack, uint32 active-set steps, uint32 kept-row mask, uint32 ticks to the action,
 *                                     uint32 ticks in all (the policy's action is the QP's nominal: p == m; of N > K
 *                                     candidate rows the K nearest to violation for it are kept, as the host keeps them;
 *                                     N < K rows are padded with a = 0, b = -1, rows no nominal can make bind)
 *   id 0xFF01: stop (the run ends, exit 0)
 * An answer has the request's seq and stamp. "ticks" are SysTick counts (core clock) from reading the request's last
 * byte to the answer's payload filled: COBS decode, CRC and header check, the computation; not the answer's encoding.
 * Any other frame is ignored; rejected bytes are counted by the receiver. Between bytes the core sleeps (WFI, woken
 * by UART0's receive interrupt with PRIMASK set, so no handler runs): a busy-polling core keeps QEMU from serving
 * the pty, which made each answer's round trip several times longer. Built like the footprint image
 * (AEGIS_NO_IO: no C library start-up, semihosting only to exit). */
#include <stdint.h>
#include <string.h>

#include "${name}.h"
#include "aegis_wire.h"
#ifdef AEGIS_PIL_QP
#include "${qp}_qp.h"
#endif
#ifdef AEGIS_PIL_DUAL
#include "${qp}_dual.h"
#endif

#define AEGIS_PIL_OBSERVATION 1u
#define AEGIS_PIL_ACTION 2u
#define AEGIS_PIL_QP_PROBLEM 3u
#define AEGIS_PIL_QP_ANSWER 4u
#define AEGIS_PIL_DUAL_PROBLEM 5u
#define AEGIS_PIL_DUAL_ANSWER 6u
#define AEGIS_PIL_STEP 7u
#define AEGIS_PIL_STEP_ANSWER 8u
#define AEGIS_PIL_STEP_LAYOUT 1u
#define AEGIS_PIL_STOP 0xFF01u

#define UART0_DATA (*(volatile uint32_t *)0x40004000u)
#define UART0_STATE (*(volatile uint32_t *)0x40004004u) /* bit 0: TX full, bit 1: RX full */
#define UART0_CTRL (*(volatile uint32_t *)0x40004008u)  /* bit 0: TX enable, bit 1: RX enable */
#define UART0_INTCLEAR (*(volatile uint32_t *)0x4000400Cu) /* write 1s: bit 1 clears the RX interrupt */
#define UART0_BAUDDIV (*(volatile uint32_t *)0x40004010u)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define UART0_RX_IRQ 0u /* mps2-an386: UART0's receive interrupt is IRQ 0 */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static aegis_wire_rx rx;
static uint8_t wire[AEGIS_WIRE_MAX_ENCODED + 1];

static void uart_write(const uint8_t *data, size_t length)
{
    size_t i;
    for (i = 0; i < length; i++) {
        while (UART0_STATE & 1u) {
        }
        UART0_DATA = data[i];
    }
}

/* Ends the payload with the ticks since start and sends it as message msg_id, answering request. */
static void answer(const aegis_wire_frame *request, uint16_t msg_id, uint8_t *payload, size_t length, uint32_t start)
{
    aegis_wire_frame frame;
    uint32_t ticks = (start - SYST_CVR) & 0x00FFFFFFu;
    memcpy(payload + length - sizeof ticks, &ticks, sizeof ticks);
    frame.flags = 0u;
    frame.msg_id = msg_id;
    frame.seq = request->seq;
    frame.stamp_ns = request->stamp_ns;
    frame.payload_len = (uint16_t)length;
    frame.payload = payload;
    uart_write(wire, aegis_wire_encode(&frame, wire, sizeof wire));
}

static void act(const aegis_wire_frame *request, uint32_t start)
{
    static float input[${NAME}_INPUT_SIZE];
    static float output[${NAME}_OUTPUT_SIZE];
    static uint8_t payload[sizeof output + 4];
    memcpy(input, request->payload, sizeof input);
    ${name}_infer(input, output);
    memcpy(payload, output, sizeof output);
    answer(request, AEGIS_PIL_ACTION, payload, sizeof payload, start);
}

#ifdef AEGIS_PIL_QP
#define QP_REQUEST_SIZE (sizeof(double) * (${QP}_QP_INPUTS * (1 + ${QP}_QP_ROWS) + ${QP}_QP_ROWS))

static void solve(const aegis_wire_frame *request, uint32_t start)
{
    static double nominal[${QP}_QP_INPUTS], a[${QP}_QP_ROWS * ${QP}_QP_INPUTS], b[${QP}_QP_ROWS], u[${QP}_QP_INPUTS];
    static uint8_t payload[sizeof u + sizeof(double) + 12];
    double slack = 0.0;
    uint32_t solved, iterations;
    memcpy(nominal, request->payload, sizeof nominal);
    memcpy(a, request->payload + sizeof nominal, sizeof a);
    memcpy(b, request->payload + sizeof nominal + sizeof a, sizeof b);
    solved = (uint32_t)${qp}_solve(nominal, a, b, u, &slack);
    memcpy(payload, u, sizeof u);
    memcpy(payload + sizeof u, &slack, sizeof slack);
    iterations = (uint32_t)${qp}_CPG_Result.info->iter;
    memcpy(payload + sizeof u + sizeof slack, &solved, sizeof solved);
    memcpy(payload + sizeof u + sizeof slack + sizeof solved, &iterations, sizeof iterations);
    answer(request, AEGIS_PIL_QP_ANSWER, payload, sizeof payload, start);
}
#endif

#ifdef AEGIS_PIL_DUAL
#define DUAL_REQUEST_SIZE (sizeof(float) * (${QP}_DUAL_INPUTS * (1 + ${QP}_DUAL_ROWS) + ${QP}_DUAL_ROWS))

static void solve_dual(const aegis_wire_frame *request, uint32_t start)
{
    static float nominal[${QP}_DUAL_INPUTS], a[${QP}_DUAL_ROWS * ${QP}_DUAL_INPUTS], b[${QP}_DUAL_ROWS], u[${QP}_DUAL_INPUTS];
    static uint8_t payload[sizeof u + sizeof(float) + 12];
    float slack = 0.0f;
    unsigned steps = 0u;
    uint32_t solved, counted;
    memcpy(nominal, request->payload, sizeof nominal);
    memcpy(a, request->payload + sizeof nominal, sizeof a);
    memcpy(b, request->payload + sizeof nominal + sizeof a, sizeof b);
    solved = (uint32_t)${qp}_dual_solve(nominal, a, b, u, &slack, &steps);
    counted = (uint32_t)steps;
    memcpy(payload, u, sizeof u);
    memcpy(payload + sizeof u, &slack, sizeof slack);
    memcpy(payload + sizeof u + sizeof slack, &solved, sizeof solved);
    memcpy(payload + sizeof u + sizeof slack + sizeof solved, &counted, sizeof counted);
    answer(request, AEGIS_PIL_DUAL_ANSWER, payload, sizeof payload, start);
}

#if ${NAME}_OUTPUT_SIZE == ${QP}_DUAL_INPUTS
#define AEGIS_PIL_HAS_STEP 1
#define STEP_MAX_ROWS 32u /* candidate rows a one-frame tick may carry (>= the QP's rows) */
#define STEP_REQUEST_SIZE(n) (4u + sizeof(float) * (${NAME}_INPUT_SIZE + (n) * (${QP}_DUAL_INPUTS + 1u)))

/* Keeps the QP's rows among n candidates for nominal u: the ${QP}_DUAL_ROWS nearest to violation, by
 * (a.u - b) / |a| (compared squared with its sign: no square root), the lower index first on a tie, in index order;
 * returns the bit mask of the kept candidates. */
static uint32_t keep_rows(const float *ca, const float *cb, unsigned n, const float *u, float *a, float *b)
{
    static float key[STEP_MAX_ROWS];
    uint32_t mask = 0u;
    unsigned i, j, k;
    for (i = 0u; i < n; i++) {
        float s = -cb[i], norm = 1e-24f;
        for (j = 0u; j < ${QP}_DUAL_INPUTS; j++) {
            s += ca[i * ${QP}_DUAL_INPUTS + j] * u[j];
            norm += ca[i * ${QP}_DUAL_INPUTS + j] * ca[i * ${QP}_DUAL_INPUTS + j];
        }
        key[i] = s * (s < 0.0f ? -s : s) / norm;
    }
    for (k = 0u; k < ${QP}_DUAL_ROWS; k++) {
        unsigned best = n;
        for (i = 0u; i < n; i++) {
            if (!(mask & (1u << i)) && (best == n || key[i] < key[best])) {
                best = i;
            }
        }
        mask |= 1u << best;
    }
    for (i = 0u, k = 0u; i < n; i++) {
        if (mask & (1u << i)) {
            memcpy(a + k * ${QP}_DUAL_INPUTS, ca + i * ${QP}_DUAL_INPUTS, sizeof(float) * ${QP}_DUAL_INPUTS);
            b[k++] = cb[i];
        }
    }
    return mask;
}

/* One tick in one frame: the policy on the observation, then the QP with its action as the nominal. */
static void step(const aegis_wire_frame *request, uint32_t start)
{
    static float input[${NAME}_INPUT_SIZE];
    static float action[${NAME}_OUTPUT_SIZE];
    static float ca[STEP_MAX_ROWS * ${QP}_DUAL_INPUTS], cb[STEP_MAX_ROWS];
    static float a[${QP}_DUAL_ROWS * ${QP}_DUAL_INPUTS], b[${QP}_DUAL_ROWS], u[${QP}_DUAL_INPUTS];
    static uint8_t payload[4u + sizeof action + sizeof u + sizeof(float) + 16u];
    const uint8_t *p = request->payload;
    unsigned n = p[2];
    float slack = 0.0f;
    unsigned steps = 0u;
    uint32_t counted, policy_ticks, mask;
    if (p[0] != AEGIS_PIL_STEP_LAYOUT || p[1] != ${NAME}_INPUT_SIZE || n < 1u || n > STEP_MAX_ROWS
        || p[3] != ${QP}_DUAL_INPUTS || request->payload_len != STEP_REQUEST_SIZE(n)) {
        return; /* another layout or another build's sizes: not answered (the host counts it unanswered) */
    }
    memcpy(input, p + 4u, sizeof input);
    memcpy(ca, p + 4u + sizeof input, sizeof(float) * n * ${QP}_DUAL_INPUTS);
    memcpy(cb, p + 4u + sizeof input + sizeof(float) * n * ${QP}_DUAL_INPUTS, sizeof(float) * n);
    ${name}_infer(input, action);
    policy_ticks = (start - SYST_CVR) & 0x00FFFFFFu;
    if (n <= ${QP}_DUAL_ROWS) { /* every candidate, then the padding the host's filter uses: a = 0, b = -1 */
        unsigned i;
        memcpy(a, ca, sizeof(float) * n * ${QP}_DUAL_INPUTS);
        memcpy(b, cb, sizeof(float) * n);
        for (i = n; i < ${QP}_DUAL_ROWS; i++) {
            memset(a + i * ${QP}_DUAL_INPUTS, 0, sizeof(float) * ${QP}_DUAL_INPUTS);
            b[i] = -1.0f;
        }
        mask = (uint32_t)((1ull << n) - 1u);
    } else {
        mask = keep_rows(ca, cb, n, action, a, b);
    }
    payload[0] = AEGIS_PIL_STEP_LAYOUT;
    payload[1] = ${NAME}_OUTPUT_SIZE;
    payload[2] = ${QP}_DUAL_INPUTS;
    payload[3] = (uint8_t)(${qp}_dual_solve(action, a, b, u, &slack, &steps) != 0);
    counted = (uint32_t)steps;
    memcpy(payload + 4u, action, sizeof action);
    memcpy(payload + 4u + sizeof action, u, sizeof u);
    memcpy(payload + 4u + sizeof action + sizeof u, &slack, sizeof slack);
    memcpy(payload + 4u + sizeof action + sizeof u + sizeof slack, &counted, sizeof counted);
    memcpy(payload + 4u + sizeof action + sizeof u + sizeof slack + 4u, &mask, sizeof mask);
    memcpy(payload + 4u + sizeof action + sizeof u + sizeof slack + 8u, &policy_ticks, sizeof policy_ticks);
    answer(request, AEGIS_PIL_STEP_ANSWER, payload, sizeof payload, start);
}
#endif
#endif

int main(void)
{
    aegis_wire_frame frame;
    UART0_BAUDDIV = 27u; /* 25 MHz / 921600 */
    UART0_CTRL = 3u | (1u << 3); /* TX, RX, and the RX interrupt: it wakes the core from WFI (never taken: PRIMASK is set) */
    __asm__ volatile("cpsid i" : : : "memory");
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* enabled, core clock, no interrupt */
    aegis_wire_rx_init(&rx);
    for (;;) {
        uint32_t start;
        if (!(UART0_STATE & 2u)) {
            UART0_INTCLEAR = 2u;                  /* clear the RX interrupt, then look again before sleeping: */
            NVIC_ICPR0 = 1u << UART0_RX_IRQ;      /* a byte that came in between leaves it pending and WFI returns at once */
            if (!(UART0_STATE & 2u)) {
                __asm__ volatile("wfi" : : : "memory"); /* idle until the next byte: QEMU then serves its pty at once */
            }
            continue;
        }
        start = SYST_CVR;
        if (aegis_wire_rx_push(&rx, (uint8_t)UART0_DATA, &frame) != AEGIS_WIRE_FRAME) {
            continue;
        }
        if (frame.msg_id == AEGIS_PIL_STOP) {
            return 0;
        }
        if (frame.msg_id == AEGIS_PIL_OBSERVATION && frame.payload_len == sizeof(float) * ${NAME}_INPUT_SIZE) {
            act(&frame, start);
        }
#ifdef AEGIS_PIL_DUAL
        else if (frame.msg_id == AEGIS_PIL_DUAL_PROBLEM && frame.payload_len == DUAL_REQUEST_SIZE) {
            solve_dual(&frame, start);
        }
#endif
#ifdef AEGIS_PIL_HAS_STEP
        else if (frame.msg_id == AEGIS_PIL_STEP && frame.payload_len >= 4u) {
            step(&frame, start);
        }
#endif
#ifdef AEGIS_PIL_QP
        else if (frame.msg_id == AEGIS_PIL_QP_PROBLEM && frame.payload_len == QP_REQUEST_SIZE) {
            solve(&frame, start);
        }
#endif
    }
}
