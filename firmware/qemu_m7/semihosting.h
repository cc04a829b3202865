/* Arm semihosting (bkpt 0xAB on M-profile); QEMU: -semihosting-config enable=on,target=native */
#ifndef QEMU_M7_SEMIHOSTING_H
#define QEMU_M7_SEMIHOSTING_H

#include <stdint.h>

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

void sh_puts(const char *s);               /* SYS_WRITE0 (NUL-terminated) */
void sh_write(const char *buf, int len);   /* chunks through SYS_WRITE0 */
__attribute__((noreturn)) void sh_exit(int status); /* QEMU exits with `status` */

#endif
