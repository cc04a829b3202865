/*
 * The newlib system calls shared by qemu_m7 and stm32f7 (see newlib_stubs.h): no files
 * (reads return EOF, every fd is a character device), one process, and _sbrk handing out
 * the heap between __heap_start__ and __heap_end__ (linker.ld). _write and _exit, which
 * depend on the output channel, stay in each target.
 */
#include <errno.h>

#include "newlib_stubs.h"

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
