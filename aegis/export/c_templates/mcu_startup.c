/* Minimal Cortex-M4F startup for QEMU mps2-an386: vector table, FPU enable, .data copy, then newlib's _start.
 *
 * With AEGIS_NO_IO the C library is left out: .bss is zeroed here, main() is called directly and the
 * result ends QEMU through a semihosting exit (that image measures the policy's own footprint). */
#include <stdint.h>

extern uint32_t __StackTop, __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;

int main(void);
void Reset_Handler(void);
void Fault_Handler(void);
#ifndef AEGIS_NO_IO
void _start(void); /* newlib (rdimon) crt0: zeroes .bss, opens semihosting stdio, calls main, then exit */
#endif

typedef union {
    void (*handler)(void);
    uint32_t *stack;
} vector_t;

__attribute__((section(".vectors"), used)) static const vector_t vectors[16] = {
    {.stack = &__StackTop},
    {.handler = Reset_Handler},
    {.handler = Fault_Handler}, /* NMI */
    {.handler = Fault_Handler}, /* HardFault */
    {.handler = Fault_Handler}, /* MemManage */
    {.handler = Fault_Handler}, /* BusFault */
    {.handler = Fault_Handler}, /* UsageFault */
    {0}, {0}, {0}, {0},
    {.handler = Fault_Handler}, /* SVCall */
    {.handler = Fault_Handler}, /* DebugMonitor */
    {0},
    {.handler = Fault_Handler}, /* PendSV */
    {.handler = Fault_Handler}, /* SysTick */
};

/* Semihosting SYS_EXIT: QEMU exits with status 0 (application exit) or 1 (run-time error). */
static void semihosting_exit(int failed)
{
    register uint32_t operation __asm__("r0") = 0x18u;
    register uint32_t reason __asm__("r1") = failed ? 0x20023u : 0x20026u;
    __asm__ volatile("bkpt 0xab" : : "r"(operation), "r"(reason) : "memory");
    for (;;) {
    }
}

/* A fault ends the run as a failure instead of hanging QEMU. */
void Fault_Handler(void)
{
    semihosting_exit(1);
}

void Reset_Handler(void)
{
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    uint32_t *src = &__data_load__;
    uint32_t *dst = &__data_start__;
    *cpacr |= 0xFu << 20; /* CP10 and CP11 full access: without it the first float instruction faults */
    __asm__ volatile("dsb\n\tisb" : : : "memory");
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
#ifdef AEGIS_NO_IO
    for (dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
    semihosting_exit(main() != 0);
#else
    _start();
    semihosting_exit(1); /* _start does not return */
#endif
}
