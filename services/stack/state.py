"""The stack's state file, so `fleet down` and `fleet status` work from another shell.

    .fleet/stack.json
    {"launcher_pid": 4242, "started_at": "2026-11-22T03:20:00Z", "status": "running",
     "endpoints": {"mqtt": "127.0.0.1:1883", "kafka": "127.0.0.1:9092"},
     "children": [{"name": "mosquitto", "pid": 4243, "exe": "/usr/sbin/mosquitto",
                   "log": ".fleet/logs/mosquitto.log", "probe": "mqtt"}, ...]}

Pids are checked against their command line before anyone signals them: a pid the OS has
reused for another program is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Literal

Status = Literal["starting", "running", "stopping"]
Probe = Literal["mqtt", "kafka", "none"]


@dataclasses.dataclass(frozen=True)
class ChildRecord:
    """A child process as recorded for other shells."""

    name: str
    pid: int
    exe: str
    log: str
    probe: Probe = "none"
    endpoint: str = ""


@dataclasses.dataclass(frozen=True)
class StackState:
    """Everything another shell needs to find, check and stop a running stack."""

    launcher_pid: int
    launcher_exe: str
    started_at: str
    status: Status
    endpoints: dict[str, str]
    children: tuple[ChildRecord, ...]

    def to_json(self) -> str:
        """Serialized form written to the state file."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackState:
        """Parse the state file; ValueError when it is not ours."""
        raw: dict[str, Any] = json.loads(text)
        try:
            children = tuple(ChildRecord(**c) for c in raw.pop("children"))
            return cls(children=children, **raw)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a stack state file: {exc}") from None


def write_state(path: Path, state: StackState) -> None:
    """Write atomically: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)


def read_state(path: Path) -> StackState | None:
    """The recorded state, or None when there is no (readable) state file."""
    try:
        return StackState.from_json(path.read_text())
    except (OSError, ValueError):
        return None


def remove_state(path: Path, owner_pid: int) -> None:
    """Delete the state file if it still belongs to `owner_pid`."""
    current = read_state(path)
    if current is not None and current.launcher_pid == owner_pid:
        path.unlink(missing_ok=True)


def process_matches(pid: int, exe: str) -> bool:
    """True when `pid` runs and its command line starts with (or contains) `exe`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not argv or not argv[0]:
        return False  # a zombie has an empty command line
    name = os.path.basename(exe).encode()
    return any(os.path.basename(arg) == name or arg == exe.encode() for arg in argv[:3])
