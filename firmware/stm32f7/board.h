#ifndef STM32F7_BOARD_H
#define STM32F7_BOARD_H

#define SYSCLK_HZ 216000000u

/* Clocks (216 MHz), I/D caches, USART1 115200 8N1 (ST-LINK VCP), DWT cycle counter. */
void board_init(void);
void uart_putc(char c);
void uart_flush(void);
/* Fault handlers: print "<name>: fault, stopping" and the fault status registers on USART1
   (polling; nothing when the UART is not set up yet), then park the core. */
__attribute__((noreturn)) void board_fault(const char *name);

#endif
