"""The lines on screen, from partial/final events. Pure Python: no Qt, no clock of its own.

How it works
- Every utterance owns one *slot* in a running sequence. A partial opens (or updates) its
  source's slot; the final fills the same slot, so the final replaces the partial exactly where
  it was — nothing moves, nothing is shown twice.
- Consecutive slots from one source run on as one paragraph; a new source starts a new
  paragraph (with a short label such as "Mic:" when labels are on).
- Paragraphs are word-wrapped to a pixel width with a text-measuring function the caller
  injects (Qt's font metrics in the app, ``len`` in tests); only the last ``lines`` wrapped
  lines are shown, so long finals scroll older text out.
- Speakers: a slot may carry the engine's speaker label. A new speaker starts a new paragraph
  headed by their display name ("Speaker A:", or the name they were renamed to); ``UNKNOWN``
  starts a paragraph with no name rather than a wrong one. A revision moves a final to its
  right speaker. Runs carry the speaker's colour key and colour for the painter.
- A language tag ("[ES]") marks a final whose detected language differs from the previous one.
- Stable-text-only mode hides partials (the slot still keeps the order right).
- Auto-clear: ``tick(now)`` empties the screen after ``clear_after_s`` seconds without a new
  word (0 = never). The caller passes the time in, which keeps this testable.
- Translation (``translation="both"``): a final's translation, whenever it arrives (out of
  order too), is laid out on its own line(s) right under that final, in runs of kind
  ``translation``; the voice's next final continues below it without repeating the name.
  ``translation="translation"`` shows the translation *instead* of the original: a final is held
  back until its translation arrives, or until ``translation_wait_s`` has passed, when the
  original is shown so nothing said is lost from view (a late translation then replaces it).
  Partials are not shown then: they are words in the language the reader does not follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from app.core.speakers import YOU, SpeakerNames, label_key

MIN_LINES, MAX_LINES = 1, 8
# Older slots beyond this are dropped: they are long scrolled out (history lives in the transcript).
MAX_SLOTS = 200

Measure = Callable[[str], float]
TRANSLATION_MODES = ("", "both", "translation")


@dataclass
class _Slot:
    label: str
    text: str
    final: bool
    seq: int
    speaker: str | None = None      # engine label ("A", "UNKNOWN") or None
    final_id: int | None = None
    language: str | None = None
    tag: str | None = None          # language tag shown before this final
    translation: str | None = None
    held_until: float | None = None  # translation-only mode: hidden until this time


@dataclass(frozen=True)
class Run:
    """A piece of one line drawn in one style."""

    text: str
    kind: str  # "final" | "partial" | "label" | "speaker" | "language" | "translation"
    speaker: str | None = None      # colour key of the speaker (None = the style's text colour)
    color: str | None = None        # #rrggbb to draw final/speaker text in, when per-speaker


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


@dataclass
class CaptionConfig:
    lines: int = 2
    stable_only: bool = False
    clear_after_s: float = 6.0
    show_labels: bool = False
    translation: str = ""           # "" (none), "both" or "translation" (translation only)
    translation_wait_s: float = 2.5

    def __post_init__(self) -> None:
        if self.translation not in TRANSLATION_MODES:
            raise ValueError(f"Translation display must be one of both, translation or empty, "
                             f"not {self.translation!r}.")
        if not MIN_LINES <= int(self.lines) <= MAX_LINES:
            raise ValueError(f"Caption lines must be {MIN_LINES}-{MAX_LINES}, not {self.lines}.")
        if self.clear_after_s < 0:
            raise ValueError("Auto-clear time cannot be negative (0 = never clear).")
        self.lines = int(self.lines)


def default_label_name(label: str) -> str:
    return {"mic": "Mic", "system": "System", "file": "File"}.get(label, label.capitalize())


@dataclass
class _Word:
    text: str
    kind: str
    speaker: str | None = None
    color: str | None = None


def changed_rows(shown: list | None, lines: list[Line]) -> list[int] | None:
    """Which of the visible ``lines`` differ from the runs ``shown`` on screen, by row; None when
    everything must be redrawn (nothing shown yet, nothing to show, or lines added or gone, which
    moves every bottom-aligned line)."""
    if not shown or not lines or len(shown) != len(lines):
        return None
    return [i for i, (before, line) in enumerate(zip(shown, lines)) if before != line.runs]


def _color_key(label: str | None, source: str, names) -> str | None:
    if getattr(names, "mic_is_you", False) and source == "mic":
        return YOU
    return label_key(label)


class CaptionModel:
    """Feed it events; ask it for ``lines()``. ``revision`` changes whenever the lines may have."""

    def __init__(self, config: CaptionConfig | None = None, *, measure: Measure = len,
                 width: float = 80, label_name: Callable[[str], str] = default_label_name,
                 names: SpeakerNames | None = None,
                 speaker_color: Callable[[str], str | None] | None = None) -> None:
        self.config = config or CaptionConfig()
        self.names = names if names is not None else SpeakerNames()
        self._speaker_color = speaker_color
        self._last_language: str | None = None
        self._measure = measure
        self._measure_translation: Measure | None = None   # its own font (the painter's italic)
        self._width = max(1.0, float(width))
        self._label_name = label_name
        self._slots: list[_Slot] = []
        self._seq = 0
        self._last_change: float | None = None
        self.revision = 0
        self.last_final: str = ""
        self.finals_seen = 0          # counts every non-empty final
        # What screen readers are to say, as it appears on screen: each final, or in
        # translation-only mode its translation (the original when the translation is late).
        self._announcements: list[str] = []
        self._cache: tuple[int, list[Line]] | None = None
        # Wrapped finals, reused while only the newest words change (see _wrapped). Anything
        # that can change how finished text wraps or reads bumps the epoch.
        self._wrap_cache: dict = {}
        self._layout_epoch = 0
        self._wrap_epoch_seen = 0

    # ---- configuration -------------------------------------------------------------------
    def configure(self, config: CaptionConfig) -> None:
        self.config = config
        self._layout_epoch += 1
        self._changed()

    def set_width(self, width: float) -> None:
        width = max(1.0, float(width))
        if width != self._width:
            self._width = width
            self._layout_epoch += 1
            self._changed()

    def set_measure(self, measure: Measure, translation: Measure | None = None) -> None:
        self._measure = measure
        self._measure_translation = translation
        self._layout_epoch += 1
        self._changed()

    def set_speaker_color(self, speaker_color: Callable[[str], str | None] | None) -> None:
        """The palette changed (a new style): recolour what is on screen."""
        self._speaker_color = speaker_color
        self._layout_epoch += 1
        self._changed()

    def names_changed(self) -> None:
        """A speaker was renamed: the names on screen follow."""
        self._layout_epoch += 1
        self._changed()

    # ---- events ------------------------------------------------------------------------
    def on_partial(self, label: str, text: str, now: float, speaker: str | None = None) -> None:
        text = _clean(text)
        slot = self._open_slot(label)
        if slot is None:
            if not text:
                return
            slot = self._new_slot(label, text, final=False)
            slot.speaker = speaker
        elif slot.text == text and (speaker is None or slot.speaker == speaker):
            return
        else:
            slot.text = text
            if speaker is not None:
                slot.speaker = speaker
        self._touch(now)

    def on_final(self, label: str, text: str, now: float, speaker: str | None = None,
                 final_id: int | None = None, language: str | None = None) -> None:
        text = _clean(text)
        slot = self._open_slot(label)
        if not text:
            # An empty final (v2 sends them after silence) just closes the utterance.
            if slot is not None:
                self._slots.remove(slot)
                self._touch(now)
            return
        if slot is None:
            slot = self._new_slot(label, text, final=True)
        else:
            slot.text = text
            slot.final = True
        slot.speaker = speaker if speaker is not None else slot.speaker
        slot.final_id, slot.language = final_id, language
        if self.config.translation == "translation" and slot.translation is None:
            slot.held_until = now + self.config.translation_wait_s
        else:
            self._announce(slot, slot.translation if self.config.translation == "translation"
                           else text)
        if language:
            if self._last_language is not None and language.lower() != self._last_language.lower():
                slot.tag = f"[{language.upper()}]"
            self._last_language = language
        self.last_final = text
        self.finals_seen += 1
        self._touch(now)

    def on_revision(self, final_id: int, speaker: str | None) -> bool:
        """A later speaker label for a final: the line moves to the right person. True when
        that final is still on screen."""
        for slot in reversed(self._slots):
            if slot.final_id == final_id:
                if slot.speaker != speaker:
                    slot.speaker = speaker
                    self._layout_epoch += 1
                    self._changed()
                return True
        return False

    def on_translation(self, final_id: int, text: str, now: float) -> bool:
        """The translation of a final: under it, or in its place (translation only). True when
        that final is still kept for the screen."""
        text = _clean(text)
        if not text:
            return False
        for slot in reversed(self._slots):
            if slot.final_id == final_id and slot.final:
                if slot.translation != text:
                    slot.translation = text
                    slot.held_until = None
                    if self.config.translation == "translation":
                        self._announce(slot, text)   # shown now, or in place of the original
                    self._layout_epoch += 1     # the same slots now wrap differently
                    self._touch(now)
                return True
        return False

    def held(self) -> int:
        """Finals held back waiting for their translation (translation-only mode)."""
        return sum(1 for s in self._slots if s.held_until is not None)

    def seconds_until_release(self, now: float) -> float | None:
        waits = [s.held_until - now for s in self._slots if s.held_until is not None]
        return max(0.0, min(waits)) if waits else None

    def speakers_on_screen(self) -> list[tuple[str, str]]:
        """(label, display name) of the renamable speakers in the kept captions, in order."""
        seen: dict[str, str] = {}
        for slot in self._slots:
            key = _color_key(slot.speaker, slot.label, self.names)
            if key and key != YOU and key not in seen:
                seen[key] = self.names.display(slot.speaker, slot.label) or key
        return list(seen.items())

    def take_announcements(self) -> list[str]:
        """What appeared on screen since the last call, for screen readers: one entry per
        finished caption ("Speaker A: …" when the speaker is known), oldest first."""
        out, self._announcements = self._announcements, []
        return out

    def _announce(self, slot: _Slot, text: str | None) -> None:
        if text:
            who = self.names.display(slot.speaker, slot.label)
            self._announcements.append(f"{who}: {text}" if who else text)
            del self._announcements[:-50]    # nobody is taking them (no overlay shown)

    def speaker_of_last_final(self) -> str | None:
        """Display name of who said the newest final on screen (status and screen readers)."""
        for slot in reversed(self._slots):
            if slot.final:
                return self.names.display(slot.speaker, slot.label)
        return None

    def drop_partials(self, label: str | None = None) -> None:
        """Forget unfinished utterances (session ended or reconnecting: no final will come)."""
        before = len(self._slots)
        self._slots = [s for s in self._slots if s.final or (label is not None and s.label != label)]
        if len(self._slots) != before:
            self._changed()

    def clear(self) -> None:
        if self._slots:
            self._slots.clear()
            self._changed()

    def tick(self, now: float) -> bool:
        """Held finals whose translation is late are shown; auto-clear after silence. Returns
        True when the screen changed."""
        released = False
        for slot in self._slots:
            if slot.held_until is not None and now >= slot.held_until:
                slot.held_until = None
                released = True
                self._announce(slot, slot.text)     # the translation is late: the original
        if released:
            self._layout_epoch += 1
            self._touch(now)
            return True
        limit = self.config.clear_after_s
        if not limit or not self._slots or self._last_change is None:
            return False
        if self.held():
            return False              # clearing now would hide a caption never shown
        if now - self._last_change >= limit:
            self._slots.clear()
            self._changed()
            return True
        return False

    def seconds_until_clear(self, now: float) -> float | None:
        limit = self.config.clear_after_s
        if not limit or not self._slots or self._last_change is None:
            return None
        return max(0.0, self._last_change + limit - now)

    def seconds_until_tick(self, now: float) -> float | None:
        """When ``tick`` next has something to do; None: nothing to clear or release. Nothing is
        cleared while a final waits for its translation, so its release comes first."""
        return self.seconds_until_release(now) if self.held() else self.seconds_until_clear(now)

    # ---- output ------------------------------------------------------------------------
    def lines(self) -> list[Line]:
        if self._cache is not None and self._cache[0] == self.revision:
            return self._cache[1]
        result = self._layout()
        self._cache = (self.revision, result)
        return result

    def visible_text(self) -> str:
        return "\n".join(line.text for line in self.lines())

    def has_partial(self) -> bool:
        return any(not s.final and s.text for s in self._slots)

    def _shows_partials(self) -> bool:
        return not self.config.stable_only and self.config.translation != "translation"

    # ---- internals ---------------------------------------------------------------------
    def _open_slot(self, label: str) -> _Slot | None:
        for slot in reversed(self._slots):
            if slot.label == label and not slot.final:
                return slot
        return None

    def _new_slot(self, label: str, text: str, final: bool) -> _Slot:
        self._seq += 1
        slot = _Slot(label, text, final, self._seq)
        self._slots.append(slot)
        if len(self._slots) > MAX_SLOTS:
            del self._slots[: len(self._slots) - MAX_SLOTS]
        return slot

    def _touch(self, now: float) -> None:
        self._last_change = now
        self._changed()

    def _changed(self) -> None:
        self.revision += 1

    def _paragraphs(self) -> list[tuple[tuple, list[_Word], int, tuple]]:
        """Visible slots grouped into runs of one voice: (head, words, stable, ident).

        ``head`` is (source, speaker key, name, unknown); the first ``stable`` words come from
        finals, which never change, and ``ident`` names them for the wrap cache."""
        paragraphs: list[list] = []
        mode = self.config.translation
        under = False               # the last paragraph is a translation: the voice continues
        for slot in self._slots:
            if not slot.text or (not slot.final and not self._shows_partials()):
                continue
            if slot.held_until is not None:
                continue            # its translation is on the way (translation-only mode)
            kind = "final" if slot.final else "partial"
            text = slot.text
            if mode == "translation" and slot.final and slot.translation:
                text = slot.translation
            name = self.names.display(slot.speaker, slot.label)
            key = _color_key(slot.speaker, slot.label, self.names)
            unknown = slot.speaker is not None and key is None
            color = self._speaker_color(key) if (key and self._speaker_color) else None
            words = [_Word(w, kind, key, color if kind == "final" else None)
                     for w in text.split(" ") if w]
            if slot.tag and slot.final and text is slot.text:
                words.insert(0, _Word(slot.tag, "language", key, None))
            head = (slot.label, key, name, unknown)
            # A partial with no label yet joins the voice before it (its final will say).
            if paragraphs and not under and (paragraphs[-1][0][:4] == head or (
                    not slot.final and slot.speaker is None and paragraphs[-1][0][0] == slot.label)):
                para = paragraphs[-1]
                para[1].extend(words)
            else:
                # Right after a translation, the same voice goes on without its name again.
                go_on = under and len(paragraphs) > 1 and paragraphs[-2][0][:3] == head[:3]
                para = [head + (("continued",) if go_on else ()), words, 0, slot.seq, slot.seq]
                paragraphs.append(para)
            under = False
            if slot.final and para[2] == len(para[1]) - len(words):
                para[2] = len(para[1])          # still a run of finals from the start
                para[4] = slot.seq
            if mode == "both" and slot.final and slot.translation:
                words = [_Word(w, "translation") for w in slot.translation.split(" ") if w]
                paragraphs.append([(slot.label, None, "", False, "translation"), words,
                                   len(words), slot.seq, slot.seq])
                under = True
        return [(head, words, stable, (first, last)) for head, words, stable, first, last in paragraphs]

    def _wrapped(self, head, prefix: _Word | None, words: list[_Word], stable: int,
                 ident: tuple) -> list[list[_Word]]:
        """``_wrap`` of ``[prefix] + pieces``, reusing the wrap of the stable (final) part: greedy
        wrapping never changes a finished line when words are added after it."""
        key = (self._layout_epoch, head, prefix.text if prefix else None, ident, stable)
        state = self._wrap_cache.get(key)
        if state is None:
            start = [prefix] if prefix else []
            pieces = start + [p for w in words[:stable] for p in self._split_long(w)]
            state = self._wrap_state(pieces, [], [])
            if len(self._wrap_cache) > 64:
                self._wrap_cache.clear()
            self._wrap_cache[key] = state
        lines, current = state
        rest = [p for w in words[stable:] for p in self._split_long(w)]
        lines, current = self._wrap_state(rest, list(lines), list(current))
        return lines + ([current] if current else [])

    def _layout(self) -> list[Line]:
        wanted = self.config.lines
        if self._wrap_epoch_seen != self._layout_epoch:
            self._wrap_cache.clear()
            self._wrap_epoch_seen = self._layout_epoch
        out: list[Line] = []
        # Walk paragraphs from the newest back until enough lines exist (older ones are hidden).
        for head, words, stable, ident in reversed(self._paragraphs()):
            label, key, name, _unknown = head[:4]
            prefix = None
            if len(head) > 4:
                pass                    # a translation, or the voice going on under one
            elif name:
                color = self._speaker_color(key) if (key and self._speaker_color) else None
                prefix = _Word(name + ":", "speaker", key, color)
            elif self.config.show_labels and label:
                prefix = _Word(self._label_name(label) + ":", "label")
            wrapped = self._wrapped(head, prefix, words, stable, ident)
            room = wanted - len(out)
            if prefix and len(wrapped) > room:
                # The label line would scroll out of sight: label what stays visible instead,
                # so with two sources one can always tell who is speaking.
                plain = self._wrapped(head, None, words, stable, ident)
                wrapped = self._labelled_tail(prefix, plain, room)
            out[0:0] = [_to_line(ws) for ws in wrapped[-room:]]   # older lines are hidden
            if len(out) >= wanted:
                break
        return out[-wanted:] if out else []

    def _labelled_tail(self, prefix: _Word, plain: list[list[_Word]], room: int) -> list[list[_Word]]:
        """The longest tail of the paragraph (wrapped without its label: ``plain``) that fits in
        ``room`` lines behind the label."""
        pieces = [p for line in plain for p in line]
        start = sum(len(line) for line in plain[:-room]) if len(plain) > room else 0
        while start < len(pieces):
            wrapped = self._wrap([prefix] + pieces[start:])
            if len(wrapped) <= room:
                return wrapped
            start += 1
        return plain[-room:]  # label and a word never fit side by side: the words matter more

    def _wrap(self, pieces: list[_Word]) -> list[list[_Word]]:
        """Greedy word wrap of pieces already no wider than the line."""
        lines, current = self._wrap_state(pieces, [], [])
        return lines + ([current] if current else [])

    def _wrap_state(self, pieces: list[_Word], lines: list[list[_Word]],
                    current: list[_Word]) -> tuple[list[list[_Word]], list[_Word]]:
        """Continue a greedy wrap: finished ``lines`` and the ``current`` line, then ``pieces``."""
        for piece in pieces:
            candidate = " ".join(w.text for w in current + [piece])
            measure = self._measure_of(piece)
            # A language tag stays with the word it introduces.
            tag_tail = len(current) > 1 and current[-1].kind == "language"
            if tag_tail and measure(candidate) > self._width:
                lines.append(current[:-1])
                current = [current[-1], piece]
            elif current and measure(candidate) > self._width:
                lines.append(current)
                current = [piece]
            else:
                current = current + [piece]
        return lines, current

    def _measure_of(self, word: _Word) -> Measure:
        if word.kind == "translation" and self._measure_translation is not None:
            return self._measure_translation
        return self._measure

    def _split_long(self, word: _Word) -> Iterable[_Word]:
        """A word wider than the whole line is broken by characters instead of overflowing."""
        measure = self._measure_of(word)
        if measure(word.text) <= self._width:
            yield word
            return
        piece = ""
        for ch in word.text:
            if piece and measure(piece + ch) > self._width:
                yield _Word(piece, word.kind, word.speaker, word.color)
                piece = ch
            else:
                piece += ch
        if piece:
            yield _Word(piece, word.kind, word.speaker, word.color)


def _to_line(words: list[_Word]) -> Line:
    runs: list[Run] = []
    for i, w in enumerate(words):
        text = w.text if i == 0 else " " + w.text
        last = runs[-1] if runs else None
        if last and (last.kind, last.speaker, last.color) == (w.kind, w.speaker, w.color):
            runs[-1] = Run(last.text + text, w.kind, w.speaker, w.color)
        else:
            runs.append(Run(text, w.kind, w.speaker, w.color))
    return Line(tuple(runs))


def _clean(text: str) -> str:
    return " ".join((text or "").split())
