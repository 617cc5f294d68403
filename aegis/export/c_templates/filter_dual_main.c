/* Solves the exported safety-filter QP (dual active set, float) on sample problems and prints each answer's float bits in hex.
 *
 * Built for the Cortex-M4F under QEMU (semihosting printf) and for the host, from the same source; the problems
 * are doubles (aegis_qp_problems.h, shared with the OSQP harness) rounded to float here, the same on both.
 * With AEGIS_NO_IO it solves one fixed problem with no I/O and no C library start-up: that image's size is the
 * footprint of the solver with its startup code; it returns 0 when the answer is right. */
#include <stdint.h>
#include <string.h>

#include "${name}_dual.h"

#ifdef AEGIS_NO_IO

static float nominal[${NAME}_DUAL_INPUTS];
static float a[${NAME}_DUAL_ROWS * ${NAME}_DUAL_INPUTS];
static float b[${NAME}_DUAL_ROWS];
static float u[${NAME}_DUAL_INPUTS];
volatile float aegis_sink;

int main(void)
{
    float slack = 0.0f;
    unsigned steps = 0u;
    int i, solved;
    for (i = 0; i < ${NAME}_DUAL_ROWS; ++i) {
        b[i] = ${NAME}_DUAL_INACTIVE_ROW_B;
    }
    a[0] = 1.0f; /* one row: u[0] >= 1, from a nominal of zeros: the answer is u = (1, 0, ...), no slack */
    b[0] = 1.0f;
    solved = ${name}_dual_solve(nominal, a, b, u, &slack, &steps);
    aegis_sink = u[0];
    return !(solved && u[0] > 0.999f && u[0] < 1.001f && slack < 1e-3f);
}

#else

#include <stdio.h>

#include "aegis_qp_problems.h" /* AEGIS_QP_COUNT, aegis_qp_nominal, aegis_qp_a, aegis_qp_b (doubles) */

#if defined(__arm__)
/* SysTick on the core clock: under QEMU's -icount shift=0 one tick is 40 instructions (25 MHz, 1 ns per instruction). */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static void ticks_start(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u;
}
static uint32_t ticks_now(void) { return SYST_CVR; }
#else
static void ticks_start(void) {}
static uint32_t ticks_now(void) { return 0u; }
#endif

static void print_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    printf(" %08lx", (unsigned long)bits);
}

int main(void)
{
    float nominal[${NAME}_DUAL_INPUTS], a[${NAME}_DUAL_ROWS * ${NAME}_DUAL_INPUTS], b[${NAME}_DUAL_ROWS];
    float u[${NAME}_DUAL_INPUTS];
    float slack;
    unsigned steps;
    int k, i, solved;
    uint32_t start, ticks;
    ticks_start();
    for (k = 0; k < AEGIS_QP_COUNT; ++k) {
        for (i = 0; i < ${NAME}_DUAL_INPUTS; ++i) {
            nominal[i] = (float)aegis_qp_nominal[k][i];
        }
        for (i = 0; i < ${NAME}_DUAL_ROWS * ${NAME}_DUAL_INPUTS; ++i) {
            a[i] = (float)aegis_qp_a[k][i];
        }
        for (i = 0; i < ${NAME}_DUAL_ROWS; ++i) {
            b[i] = (float)aegis_qp_b[k][i];
        }
        start = ticks_now();
        solved = ${name}_dual_solve(nominal, a, b, u, &slack, &steps);
        ticks = (start - ticks_now()) & 0x00FFFFFFu;
        printf("qp %d %d %u %lu", k, solved, steps, (unsigned long)ticks);
        for (i = 0; i < ${NAME}_DUAL_INPUTS; ++i) {
            print_bits(u[i]);
        }
        print_bits(slack);
        printf(" %s\n", solved ? "solved" : "failed");
    }
    printf("aegis: %d QPs done\n", AEGIS_QP_COUNT);
    return 0;
}

#endif
