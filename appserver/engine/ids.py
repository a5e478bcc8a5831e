"""Time-ordered ids (UUID version 7), as the reference uses for threads, turns and items.

Owns ``uuid7``. Python 3.11 has no ``uuid.uuid7``; this is the RFC 9562 layout (48-bit
millisecond timestamp, version and variant bits, random rest), a few lines of bit packing
rather than a dependency. It must never be used for secrets.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 66) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
