"""The model's RAM and flash against a target's limits (the compile's size check).

Code size is not counted: it depends on the kernels linked and the compiler, while
buffers and weights are known exactly from the buffer plan and the report.
"""
from __future__ import annotations

from typing import Any

#: The default target's memory (STM32F746: 320 KB SRAM, 1 MB flash), in KB.
DEFAULT_RAM_LIMIT_KB = 320
DEFAULT_FLASH_LIMIT_KB = 1024


def memory_use(report: dict[str, Any], ram_limit_kb: int, flash_limit_kb: int) -> dict[str, Any]:
    """RAM (the arena of activations and scratch, plus the caller's image buffer) and flash
    (weights, biases, input constants) in bytes, the limits in bytes and whether both fit."""
    totals = report["totals"]
    ram = int(totals["arena_bytes"]) + int(totals["input_buffer_bytes"])
    flash = int(totals["weight_bytes"])
    ram_limit, flash_limit = ram_limit_kb * 1024, flash_limit_kb * 1024
    return {"ram_bytes": ram, "flash_bytes": flash, "ram_limit_bytes": ram_limit,
            "flash_limit_bytes": flash_limit, "fits": ram <= ram_limit and flash <= flash_limit}


def memory_warning(model: str, memory: dict[str, Any]) -> str:
    """One line with both figures and both limits."""
    def kb(n: int) -> str:
        return f"{n / 1024:.1f} KB"

    return (f"{model}: too big for the target: needs {kb(memory['ram_bytes'])} RAM for buffers "
            f"(limit {memory['ram_limit_bytes'] // 1024} KB) and {kb(memory['flash_bytes'])} flash for weights "
            f"(limit {memory['flash_limit_bytes'] // 1024} KB); the default limits are the STM32F746's")
