"""`nbversion VERB ...`: parse, call core, print a table or JSON. Exit 0 ok, 1 error, 2 usage, 3 denied."""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

from .events import progress_text
from .errors import InternalError, NbversionError, StoppedByUser, as_error, interrupted_message, wants_traceback

logger = logging.getLogger(__name__)


class _Progress:
    """One rewritten line on a terminal's stderr; silent when stderr is not a terminal. Redrawn
    at most every `EVERY` seconds (a new stage and a stage's end always), so an operation that
    reports every file pays one clock read per event, not one terminal write."""

    EVERY = 0.1

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr   # looked up now: sys.stderr may have been replaced since import
        self.active = self.stream.isatty()
        self.shown = False
        self.stage, self.since, self.drawn = None, 0.0, 0.0

    def __call__(self, event) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if event.stage != self.stage:   # a new stage: its rate (and so its ETA) starts afresh
            self.stage, self.since = event.stage, now
        elif now - self.drawn < self.EVERY and not 0 < event.total <= event.done:
            return
        self.drawn = now
        bar = ""
        if event.total:
            filled = int(20 * min(event.done, event.total) / event.total)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] "
        self.stream.write(f"\r\033[K{bar}{progress_text(event, now - self.since)}"[:200])
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def main(argv=None) -> int:
    """Run one verb. Every failure ends as `error:` / `hint:` lines and an exit code, never a traceback."""
    try:
        return _main(argv)
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt as exc:   # Ctrl-C before the verb started (imports, parsing)
        print(f"error: {interrupted_message(exc)}", file=sys.stderr)
        return 130


def _main(argv) -> int:
    from .commands import HelpShown, build_cli_parser, dispatch
    from .render import to_json

    try:
        parser = build_cli_parser()
        args = parser.parse_args(argv)
    except HelpShown:
        return 0
    except NbversionError as exc:
        return _fail(exc)
    if args.show_version:
        from . import __version__
        print(__version__)
        return 0
    try:
        _start_logs(args, argv)
    except OSError as exc:   # an unwritable --log-file: said like any other file-system refusal
        return _fail(as_error(exc))
    if not getattr(args, "_verb", None):
        parser.print_help()
        return 2
    progress, started = _Progress(), time.monotonic()
    try:
        result = dispatch(args, args.workspace, on_event=progress)
    except KeyboardInterrupt as exc:   # Ctrl-C: the operation cleaned up on its way out
        progress.close()
        stopped = StoppedByUser(interrupted_message(exc))
        if getattr(args, "json", False):   # scripts tell it apart by its type, as every error
            print(to_json({"error": stopped.to_dict()}))
        return _fail(stopped)
    except BrokenPipeError:
        raise
    except Exception as exc:   # noqa: BLE001 - the last line of defence: translate, never dump a traceback
        progress.close()
        # the whole chain (`raise ... from exc`: git's or DVC's own error) goes to -v / --log-file
        logger.debug("%s failed after %.2f s", args.verb, time.monotonic() - started, exc_info=True)
        error = as_error(exc)
        if isinstance(error, InternalError) and wants_traceback():
            raise
        if getattr(args, "json", False):   # scripts get every problem, not just the first line
            print(to_json({"error": error.to_dict()}))
        return _fail(error)
    progress.close()
    logger.debug("%s done in %.2f s", args.verb, time.monotonic() - started)
    print(to_json(result) if args.json else str(result))
    sys.stdout.flush()   # a closed pipe shows up here, inside main, not at interpreter exit
    return getattr(result, "exit_code", 0)


def _start_logs(args, argv) -> None:
    from . import __version__, logs

    path = logs.configure(args.verbose, logs.log_file_setting(args.log_file, args.workspace))
    logger.debug("nbversion %s: %s (pid %d, cwd %s, log file %s)", __version__,
                 " ".join(sys.argv[1:] if argv is None else argv), os.getpid(), os.getcwd(), path)


def _reader_gone() -> int:
    """`nbversion log --json | head`: the reader left; stop quietly, as `git log | head` does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # the interpreter's final flush must not fail again
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


def _fail(exc: NbversionError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
