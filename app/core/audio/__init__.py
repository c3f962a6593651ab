"""Audio: sources (file, microphone, system audio), conversion to the session format, levels."""
