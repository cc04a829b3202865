/*
 * STM32F746G-DISCO bring-up: 216 MHz from the 25 MHz HSE, I/D caches, USART1 on the
 * ST-LINK virtual COM port (PA9 TX / PB7 RX, AF7, 115200 8N1), DWT cycle counter,
 * newlib's _write/_exit so printf goes to USART1 (the other system calls are in
 * common/newlib_stubs.c), and board_fault() for the fault handlers in startup.c.
 */
#include "board.h"
#include "newlib_stubs.h"
#include "stm32f7_regs.h"

#define HSE_HZ 25000000u
#define PLL_M 25u  /* 1 MHz PLL input */
#define PLL_N 432u /* 432 MHz VCO */
#define PLL_P 2u   /* 216 MHz SYSCLK */
#define PLL_Q 9u   /* 48 MHz USB/SDMMC clock */
#define APB2_HZ (SYSCLK_HZ / 2u)
#define UART_BAUD 115200u

static void clock_init(void)
{
    RCC_CR |= RCC_CR_HSEON;
    while ((RCC_CR & RCC_CR_HSERDY) == 0u) {
    }

    /* Voltage scale 1 (needed for over-drive). */
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR1 |= PWR_CR1_VOS_SCALE1;

    RCC_CR &= ~RCC_CR_PLLON;
    /* Read-modify-write: bits 31:28 are reserved (reset value 0x24003010 has bit 29 set, which
       ST's HAL keeps) and must stay as they are. */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(RCC_PLLCFGR_PLLM_MASK | RCC_PLLCFGR_PLLN_MASK |
                                   RCC_PLLCFGR_PLLP_MASK | RCC_PLLCFGR_PLLSRC_HSE |
                                   RCC_PLLCFGR_PLLQ_MASK)) |
                  PLL_M | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | RCC_PLLCFGR_PLLSRC_HSE |
                  (PLL_Q << 24);
    RCC_CR |= RCC_CR_PLLON;

    /* Over-drive, required above 180 MHz (RM0385 5.1.4: enable while the PLL locks). */
    PWR_CR1 |= PWR_CR1_ODEN;
    while ((PWR_CSR1 & PWR_CSR1_ODRDY) == 0u) {
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    while ((PWR_CSR1 & PWR_CSR1_ODSWRDY) == 0u) {
    }
    while ((RCC_CR & RCC_CR_PLLRDY) == 0u) {
    }

    /* 7 wait states at 216 MHz / 2.7-3.6 V. ART accelerator and prefetch are switched on, but
       they only serve flash reads over the ITCM interface (0x00200000): this firmware is
       linked at the AXIM alias 0x08000000, where the Cortex-M7's L1 I/D caches (cache_init)
       hide the wait states instead. */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | 7u | FLASH_ACR_ARTEN | FLASH_ACR_PRFTEN;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != 7u) {
    }

    /* AHB /1 (216 MHz), APB1 /4 (54 MHz), APB2 /2 (108 MHz), SYSCLK = PLL. */
    RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2 | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }
}

static void cache_init(void)
{
    /* I-cache: invalidate, enable. */
    dsb();
    isb();
    SCB_ICIALLU = 0u;
    dsb();
    isb();
    SCB_CCR |= SCB_CCR_IC;
    dsb();
    isb();

    /* D-cache: invalidate by set/way (level 1 data cache), enable. */
    SCB_CSSELR = 0u;
    dsb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = (ccsidr >> 13) & 0x7FFFu;
    do {
        uint32_t ways = (ccsidr >> 3) & 0x3FFu;
        do {
            SCB_DCISW = ((sets & 0x1FFu) << 5) | ((ways & 0x3u) << 30);
        } while (ways-- != 0u);
    } while (sets-- != 0u);
    dsb();
    SCB_CCR |= SCB_CCR_DC;
    dsb();
    isb();
}

static int uart_ready; /* set once USART1 is configured: board_fault() may print */

static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR;

    /* PA9 = USART1_TX, PB7 = USART1_RX: alternate function 7, high speed, RX pulled up. */
    GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);
    GPIO_OSPEEDR(GPIOA_BASE) |= 3u << 18;
    GPIO_OTYPER(GPIOA_BASE) &= ~(1u << 9);
    GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);

    GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (2u << 14);
    GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (1u << 14);
    GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);

    USART1_CR1 = 0u;
    USART1_CR2 = 0u; /* 1 stop bit */
    USART1_CR3 = 0u;
    USART1_BRR = (APB2_HZ + UART_BAUD / 2u) / UART_BAUD; /* oversampling by 16 */
    USART1_CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE; /* 8 data bits, no parity */
    uart_ready = 1;
}

static void dwt_init(void)
{
    COREDEBUG_DEMCR |= COREDEBUG_DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u; /* unlock (Cortex-M7) */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

void board_init(void)
{
    clock_init();
    cache_init();
    uart_init();
    dwt_init();
}

void uart_putc(char c)
{
    while ((USART1_ISR & USART_ISR_TXE) == 0u) {
    }
    USART1_TDR = (uint8_t)c;
}

void uart_flush(void)
{
    while ((USART1_ISR & USART_ISR_TC) == 0u) {
    }
}

/* ---- faults: polled output only (no printf: the fault may have hit newlib or the heap) ---- */

static void uart_puts(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n') {
            uart_putc('\r');
        }
        uart_putc(*s);
    }
}

static void uart_put_hex(const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    uart_puts(label);
    uart_puts(" 0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        uart_putc(digits[(value >> shift) & 0xFu]);
    }
}

void board_fault(const char *name)
{
    if (uart_ready) {
        uart_puts("\n");
        uart_puts(name);
        uart_puts(": fault, stopping");
        uart_put_hex(" CFSR", SCB_CFSR);
        uart_put_hex(" HFSR", SCB_HFSR);
        uart_put_hex(" MMFAR", SCB_MMFAR);
        uart_put_hex(" BFAR", SCB_BFAR);
        uart_puts("\n");
        uart_flush();
    }
    for (;;) {
    }
}

/* ---- newlib _write/_exit; the other system calls are in common/newlib_stubs.c ---- */

int _write(int fd, const char *buf, int len)
{
    (void)fd;
    for (int i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            uart_putc('\r');
        }
        uart_putc(buf[i]);
    }
    return len;
}

void _exit(int status)
{
    (void)status;
    uart_flush();
    for (;;) {
    }
}
