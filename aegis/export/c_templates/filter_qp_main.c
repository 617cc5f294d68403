/* Solves the exported safety-filter QP on sample problems and prints each answer's double bits in hex.
 *
 * Built for the Cortex-M4F under QEMU (semihosting printf) and for the host, from the same source.
 * With AEGIS_NO_IO it solves one fixed problem with no I/O and no C library start-up: that image's size
 * is the footprint of the solver with its startup code; it returns 0 when the answer is right. */
#include "${name}_qp.h"

#ifdef AEGIS_NO_IO

static double nominal[${NAME}_QP_INPUTS];
static double a[${NAME}_QP_ROWS * ${NAME}_QP_INPUTS];
static double b[${NAME}_QP_ROWS];
static double u[${NAME}_QP_INPUTS];
volatile double aegis_sink;

int main(void)
{
    double slack = 0.0;
    int i, solved;
    for (i = 0; i < ${NAME}_QP_ROWS; ++i) {
        b[i] = ${NAME}_QP_INACTIVE_ROW_B;
    }
    a[0] = 1.0; /* one row: u[0] >= 1, from a nominal of zeros: the answer is u = (1, 0, ...), no slack */
    b[0] = 1.0;
    solved = ${name}_solve(nominal, a, b, u, &slack);
    aegis_sink = u[0];
    return !(solved && u[0] > 0.999 && u[0] < 1.001 && slack < 1e-3);
}

#else

#include <stdint.h>
#include <stdio.h>

#include "aegis_qp_problems.h" /* AEGIS_QP_COUNT, aegis_qp_nominal, aegis_qp_a, aegis_qp_b */

static void print_bits(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    printf(" %08lx%08lx", (unsigned long)(bits >> 32), (unsigned long)(bits & 0xffffffffu));
}

int main(void)
{
    double u[${NAME}_QP_INPUTS];
    double slack;
    int k, i, solved;
    for (k = 0; k < AEGIS_QP_COUNT; ++k) {
        solved = ${name}_solve(aegis_qp_nominal[k], aegis_qp_a[k], aegis_qp_b[k], u, &slack);
        printf("qp %d %d %d", k, solved, (int)${name}_CPG_Result.info->iter);
        for (i = 0; i < ${NAME}_QP_INPUTS; ++i) {
            print_bits(u[i]);
        }
        print_bits(slack);
        printf(" %s\n", ${name}_CPG_Result.info->status);
    }
    printf("aegis: %d QPs done\n", AEGIS_QP_COUNT);
    return 0;
}

#endif
