"""Longest GUI-thread gap while Settings opens with a LOCKED keyring that has to prompt.

A real Secret Service (gnome-keyring on a private D-Bus session) holds the API key in a locked
collection; reading it makes gnome-keyring show its unlock prompt (gcr-prompter, on a private
Xvfb). A "user" answers the prompt with xdotool ``--answer-after`` seconds after it appears. The
app process (offscreen Qt) opens the Settings dialog with a 1 ms timer on its GUI thread and
reports the longest gap between ticks until the API key page says a key is stored, plus how
long constructing and showing the dialog took. Sound-device listing is left out (no keyring).

    python -m tests.benchmarks.bench_settings_keyring [--before TREE] [--rounds N]

``--before`` runs the same measurement on another checkout (e.g. a worktree of main) first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from tests.benchmarks.common import result

ROOT = Path(__file__).resolve().parents[2]
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout measured first")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--answer-after", type=float, default=2.0,
                        help="seconds the user takes to answer the unlock prompt")
    args = parser.parse_args(argv)
    from tests.fixtures.desktop import x_desktop
    from tests.fixtures.secret_service import SecretServiceEnv, open_settings_while_prompting

    rows: dict[str, list[dict]] = {}
    trees = ([("before", args.before.resolve())] if args.before else []) + [("after", ROOT)]
    home = Path(tempfile.mkdtemp(prefix="bench-keyring-"))
    with x_desktop(home, compositor=False) as (display, desktop_env):
        previous = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = display   # D-Bus activates gcr-prompter with its own environment
        try:
            service = SecretServiceEnv().start()
        finally:
            if previous is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = previous
        try:
            rows = {name: [] for name, _ in trees}
            for round_no in range(args.rounds):
                for name, tree in trees:
                    data = open_settings_while_prompting(service, desktop_env, tree,
                                                         args.answer_after)
                    rows[name].append(data)
                    print(f"round {round_no + 1} {name}: dialog open returned after "
                          f"{data['opened_ms']} ms, longest GUI-thread gap {data['max_gap_ms']} ms, "
                          f"after it was shown {data['gap_after_shown_ms']} ms "
                          f"(idle {data['idle_gap_ms']} ms), key shown after {data['known_ms']} ms, "
                          f"prompt appeared after {data['prompt_after_ms']} ms", flush=True)
        finally:
            service.stop()
    print(f"load average after measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, data in rows.items():
        result(f"{name}: opening Settings returns after, max", max(d["opened_ms"] for d in data), "ms")
        result(f"{name}: longest GUI-thread gap while the keyring prompts, max",
               max(d["max_gap_ms"] for d in data), "ms", 16.0)
        result(f"{name}: longest GUI-thread gap once the dialog is shown, max",
               max(d["gap_after_shown_ms"] for d in data), "ms", 16.0)
        result(f"{name}: 'a key is stored' shown after, max", max(d["known_ms"] for d in data), "ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
