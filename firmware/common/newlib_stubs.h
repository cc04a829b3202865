/*
 * newlib system calls for the bare-metal Cortex-M7 targets (--specs=nano.specs, no libnosys).
 * common/newlib_stubs.c defines the ones both targets share (no files, no processes, heap
 * between the linker symbols __heap_start__ and __heap_end__); each target defines _write
 * (its output channel) and _exit.
 */
#ifndef FIRMWARE_NEWLIB_STUBS_H
#define FIRMWARE_NEWLIB_STUBS_H

#include <stddef.h>
#include <sys/stat.h>

/* Per target: qemu_m7/semihosting.c, stm32f7/board.c. */
int _write(int fd, const char *buf, int len);
__attribute__((noreturn)) void _exit(int status);

/* Shared: common/newlib_stubs.c. */
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int offset, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
void *_sbrk(ptrdiff_t incr);
int _kill(int pid, int sig);
int _getpid(void);

#endif
