"""Moonshine's encoder whole vs in two parts (``encoder_front``) on a phrase that grows like partials.

    .venv/bin/python -m tests.benchmarks.bench_encoder_front            # ~1 min
    .venv/bin/python -m tests.benchmarks.bench_encoder_front --reps 5 --seconds 6

The same audio (speech-like noise) is encoded in 0.5 s steps from 0.5 s to ``--seconds``, as the
partials of one phrase are: once by the whole encoder, once by the split one (the convolutions
only on what is new). Rounds alternate the two, so the machine's load falls on both alike; the
figures are process CPU time. Also prints how far the split encoder's output is from the whole
one's (relative L2), for the float and the int8 weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.common import result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from app.core.engines import encoder_front, moonshine

    directory = moonshine.model_dir()
    if directory is None:
        print("# the Moonshine model is not installed: skipped")
        return 0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.enable_mem_pattern = opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 3
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(args.seconds * 16000)) * 0.1).astype(np.float32)
    ends = range(8000, len(audio) + 1, 8000)
    print(f"# {len(ends)} encodes of 0.5-{args.seconds:g} s, {args.reps} alternating rounds, "
          f"load {os.getloadavg()[0]:.1f}")
    for weights in ("int8", "float"):
        path, _, used = moonshine.model_files(directory, weights)
        if used != weights:
            print(f"# {weights}: the prepared weights are not available here ({used})")
            continue
        front_path, back_path = encoder_front.prepared(path)
        whole = encoder_front.WholeEncoder(ort.InferenceSession(str(path), opts))
        split = encoder_front.SplitEncoder(
            encoder_front.EncoderFront(ort.InferenceSession(str(front_path), opts)),
            ort.InferenceSession(str(back_path), opts))
        last = audio[:ends[-1]]
        a, b = whole.encode(last), split.encode(last)
        error = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        times = {"whole": [], "split": []}
        for _ in range(args.reps):
            for name, encoder in (("whole", whole), ("split", split)):
                state: dict = {}
                began = time.process_time()
                for end in ends:
                    encoder.encode(audio[:end], state)
                times[name].append(time.process_time() - began)
        w, s = min(times["whole"]), min(times["split"])
        print(f"{weights:>5}: whole {w:.3f} s, split {s:.3f} s CPU (best of {args.reps}; all: "
              f"{', '.join(f'{x:.2f}' for x in times['whole'])} / "
              f"{', '.join(f'{x:.2f}' for x in times['split'])}), ratio {s / w:.2f}, "
              f"output difference {error:.1e}")
        result(f"encoder {weights}: split / whole CPU", s / w, "ratio")
    print(f"# load after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
