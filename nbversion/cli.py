"""`nbversion VERB ...`: parse, call core, print a table or JSON. Exit 0 ok, 1 error, 2 usage, 3 denied."""
from __future__ import annotations

import sys

from .errors import NbversionError


class _Progress:
    """One rewritten line on a terminal's stderr; silent when stderr is not a terminal."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.active = stream.isatty()
        self.shown = False

    def __call__(self, event) -> None:
        if not self.active:
            return
        bar = ""
        if event.total:
            filled = int(20 * min(event.done, event.total) / event.total)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] {event.done}/{event.total} "
        self.stream.write(f"\r\033[K{event.stage}: {bar}{event.message}"[:200])
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def main(argv=None) -> int:
    from .commands import HelpShown, build_cli_parser, dispatch
    from .render import to_json

    try:
        parser = build_cli_parser()
        args = parser.parse_args(argv)
    except HelpShown:
        return 0
    except NbversionError as exc:
        return _fail(exc)
    if args.version:
        from . import __version__
        print(__version__)
        return 0
    if not getattr(args, "_verb", None):
        parser.print_help()
        return 2
    progress = _Progress()
    try:
        result = dispatch(args, args.workspace, on_event=progress)
    except NbversionError as exc:
        progress.close()
        if getattr(args, "json", False):   # scripts get every problem, not just the first line
            print(to_json({"error": exc.to_dict()}))
        return _fail(exc)
    except KeyboardInterrupt:
        progress.close()
        print("error: interrupted", file=sys.stderr)
        return 130
    progress.close()
    print(to_json(result) if args.json else str(result))
    return getattr(result, "exit_code", 0)


def _fail(exc: NbversionError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
