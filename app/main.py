"""Composition root: parse the command line and hand over to the mode that was asked for."""

from __future__ import annotations

import sys

from app.cli import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.json and not args.headless:
        parser.error("--json only applies with --headless (the overlay shows captions, it prints nothing)")
    if args.list_devices:
        from app.core.audio.devices import print_device_list
        return print_device_list()
    if args.self_test:
        from app.selftest import run_self_test
        return run_self_test(args)
    if args.headless:
        from app.headless import run_headless
        return run_headless(args)
    from app.qt.application import run_gui
    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
