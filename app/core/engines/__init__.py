"""Offline speech engines (no network): LocalSession, OfflineTranscriber, availability check."""

from app.core.engines.availability import offline_engine_available

__all__ = ["offline_engine_available"]
