/*
 * Semihosting console and exit, and newlib's _write/_exit on top of them (the other system
 * calls printf needs are in common/newlib_stubs.c).
 */
#include "newlib_stubs.h"
#include "semihosting.h"

static inline uintptr_t semihost_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_puts(const char *s)
{
    semihost_call(SYS_WRITE0, s);
}

void sh_write(const char *buf, int len)
{
    char chunk[129];
    int n = 0;
    for (int i = 0; i < len; i++) {
        if (buf[i] == '\0') {
            continue; /* SYS_WRITE0 cannot carry a NUL */
        }
        chunk[n++] = buf[i];
        if (n == (int)sizeof(chunk) - 1) {
            chunk[n] = '\0';
            sh_puts(chunk);
            n = 0;
        }
    }
    if (n > 0) {
        chunk[n] = '\0';
        sh_puts(chunk);
    }
}

void sh_exit(int status)
{
    /* SYS_EXIT_EXTENDED takes {reason, subcode}; QEMU exits with subcode when the reason is
       ADP_Stopped_ApplicationExit. Plain SYS_EXIT (32-bit: reason in r1) only gives 0 or 1. */
    uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    semihost_call(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0x20023));
    for (;;) {
    }
}

/* ---- newlib _write/_exit; the other system calls are in common/newlib_stubs.c ---- */

int _write(int fd, const char *buf, int len)
{
    (void)fd;
    sh_write(buf, len);
    return len;
}

void _exit(int status)
{
    sh_exit(status);
}
