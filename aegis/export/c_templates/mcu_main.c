/* Runs an exported policy on the Cortex-M4F under QEMU and prints each output's float bits in hex (semihosting).
 *
 * With AEGIS_NO_IO it runs one inference with no I/O and no C library: that image's size is the footprint
 * of the policy with its startup code. */
#include "${name}.h"

#ifdef AEGIS_NO_IO

static float input[${NAME}_INPUT_SIZE];
static float output[${NAME}_OUTPUT_SIZE];
volatile float aegis_sink;

int main(void)
{
    input[0] = 1.0f;
    ${name}_infer(input, output);
    aegis_sink = output[0];
    return 0;
}

#else

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aegis_test_vectors.h" /* AEGIS_TEST_COUNT and aegis_test_inputs */

int main(void)
{
    float output[${NAME}_OUTPUT_SIZE];
    uint32_t bits;
    int k, j;
    for (k = 0; k < AEGIS_TEST_COUNT; ++k) {
        ${name}_infer(aegis_test_inputs[k], output);
        printf("out %d", k);
        for (j = 0; j < ${NAME}_OUTPUT_SIZE; ++j) {
            memcpy(&bits, &output[j], sizeof bits);
            printf(" %08lx", (unsigned long)bits);
        }
        printf("\n");
    }
    printf("aegis: %d inferences done\n", AEGIS_TEST_COUNT);
    return 0;
}

#endif
