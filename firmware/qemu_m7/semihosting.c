/*
 * Semihosting console and exit, plus the newlib system calls printf needs.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>

#include "semihosting.h"

static inline uintptr_t semihost_call(uintptr_t op, const void *arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_putc(char c)
{
    semihost_call(SYS_WRITEC, &c);
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

/* ---- newlib system calls (--specs=nano.specs, no libnosys) ---- */

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int offset, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
void *_sbrk(ptrdiff_t incr);
int _kill(int pid, int sig);
int _getpid(void);
__attribute__((noreturn)) void _exit(int status);

int _write(int fd, const char *buf, int len)
{
    (void)fd;
    sh_write(buf, len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    (void)fd;
    return 1;
}

extern char __heap_start__[];
extern char __heap_end__[];

void *_sbrk(ptrdiff_t incr)
{
    static char *brk = __heap_start__;
    if (incr > __heap_end__ - brk || incr < __heap_start__ - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *prev = brk;
    brk += incr;
    return prev;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}

void _exit(int status)
{
    sh_exit(status);
}
