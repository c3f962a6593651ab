"""Loopback AssemblyAI-compatible server (v2 real-time + v3 Universal-Streaming) for tests."""

from .server import LoopbackServer
from .session import SessionRecord

__all__ = ["LoopbackServer", "SessionRecord"]
