"""CPU feature detection (``_cpu.pyx``), compiled for the baseline target."""

from typing import Dict

DETECTION: str

def supports(level: str) -> bool: ...
def features() -> Dict[str, bool]: ...
