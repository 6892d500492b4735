"""The `[payload]` configuration section: where VM.create's payload disk images are written
and how many decoded bytes one create may carry (agent/intake/payload.py checks, and
agent/runtime/payloads.py writes). A section of agent/config.py's `Config`, loaded and
checked the same way; its own module only to keep config.py under the size limit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PayloadConfig:
    # Payload disk images (vmPayload, PAYLOAD:, cloudInit) built for VM.create; each is
    # removed when its VM is destroyed or goes down.
    dir: str = "/run/hvagent/payload"
    # The decoded content of one VM.create's payloads, all images together.
    max_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.dir.startswith("/"):
            raise ValueError("dir must be an absolute path")
        if not 0 < self.max_bytes <= 1 << 30:
            raise ValueError("max_bytes must be between 1 and 1073741824")
