/* Host harness for an exported policy: batch inference and timing, loaded through ctypes by aegis.export.host. */
#define _POSIX_C_SOURCE 199309L

#include <time.h>

#include "${name}.h"

/* Runs count inferences: row k of inputs (${NAME}_INPUT_SIZE floats) to row k of outputs. */
void aegis_host_run(const float *inputs, float *outputs, long count)
{
    long k;
    for (k = 0; k < count; ++k) {
        ${name}_infer(inputs + k * ${NAME}_INPUT_SIZE, outputs + k * ${NAME}_OUTPUT_SIZE);
    }
}

/* Each inference's own wall time in ns: CLOCK_MONOTONIC read just before and just after it, row k of inputs
 * to row k of outputs, nanoseconds[k] its time (the clock reads, about 20 ns each, are in it). */
void aegis_host_time_each(const float *inputs, float *outputs, long count, long long *nanoseconds)
{
    struct timespec start, stop;
    long k;
    for (k = 0; k < count; ++k) {
        clock_gettime(CLOCK_MONOTONIC, &start);
        ${name}_infer(inputs + k * ${NAME}_INPUT_SIZE, outputs + k * ${NAME}_OUTPUT_SIZE);
        clock_gettime(CLOCK_MONOTONIC, &stop);
        nanoseconds[k] = (long long)(stop.tv_sec - start.tv_sec) * 1000000000LL + (long long)(stop.tv_nsec - start.tv_nsec);
    }
}

/* Wall seconds (CLOCK_MONOTONIC) for repeats passes of aegis_host_run over count inputs. */
double aegis_host_seconds(const float *inputs, float *outputs, long count, long repeats)
{
    struct timespec start, stop;
    long r;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (r = 0; r < repeats; ++r) {
        aegis_host_run(inputs, outputs, count);
    }
    clock_gettime(CLOCK_MONOTONIC, &stop);
    return (double)(stop.tv_sec - start.tv_sec) + 1e-9 * (double)(stop.tv_nsec - start.tv_nsec);
}
