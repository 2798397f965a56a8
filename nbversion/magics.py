"""`%mv_VERB ...` line magics: parse with the CLI's parser, call core, return a result that renders.

Errors raise (so "Run All" and nbval stop at the failing cell) but show as one short red
line with the hint, through IPython's `set_custom_exc`, never as a traceback. An unexpected
exception inside a magic (a bug) is turned into the same one-line `internal error` as the
CLI's; the handler stays on NbversionError so the user's own code keeps its tracebacks.
"""
from __future__ import annotations

import html
import logging
import os
import shlex

from .errors import InternalError, NbversionError, StoppedByUser, as_error, interrupted_message, wants_traceback

logger = logging.getLogger(__name__)


def _notebook_path(shell) -> str | None:
    ns = shell.user_ns
    for key in ("__session__", "__vsc_ipynb_file__"):
        if ns.get(key):
            return str(ns[key])
    return os.environ.get("JPY_SESSION_NAME") or None


def _current_source(shell) -> str:
    try:
        return shell.history_manager.input_hist_raw[-1]
    except (AttributeError, IndexError):
        return ""


def _cell_number(shell) -> "int | None":
    """The In[] number of the running cell. ipykernel has already counted the next cell while
    one runs (`execution_count` is one ahead there), so the history's length says it: the
    running cell is its last entry. A shell that stores no history: its own count."""
    try:
        stored = len(shell.history_manager.input_hist_raw) - 1
    except (AttributeError, TypeError):
        stored = 0
    return stored if stored >= 1 else shell.execution_count


def _run_verb(shell, name: str, line: str, on_event=None):
    from .commands import HelpShown, build_magic_parser, dispatch
    from .core.repo.cell import CellContext, current_cell

    parser = build_magic_parser(name)
    try:
        args = parser.parse_args(shlex.split(line))
    except HelpShown:
        return None
    cell = CellContext.from_source(_notebook_path(shell), _cell_number(shell), _current_source(shell))
    token = current_cell.set(cell)
    try:
        return dispatch(args, None, on_event=on_event)
    finally:
        current_cell.reset(token)


def show_error(shell, etype, value, tb, tb_offset=None):
    """Custom exception handler: one red line and the hint, no traceback."""
    from IPython.display import display

    # an interruption is not a mistake to explain: its message alone says what it left
    text = value.message if isinstance(value, StoppedByUser) else f"{type(value).__name__}: {value.message}"
    hint = f"<br><span style='color:var(--jp-ui-font-color2,#666)'>hint: {html.escape(value.hint)}</span>" \
        if value.hint else ""
    plain = f"error: {value.message}" + (f"\nhint: {value.hint}" if value.hint else "")
    # one output with both forms: JupyterLab shows the red line, a terminal and nbval the text
    # (two outputs showed every error twice in a notebook)
    try:
        display({"text/html": f"<div style='color:var(--jp-error-color1,#c00)'><b>nbversion error</b> — "
                              f"{html.escape(text)}{hint}</div>", "text/plain": plain}, raw=True)
    except Exception:   # no display machinery at all: the text still says it
        logger.debug("could not display the error", exc_info=True)
        print(plain)
    return None


def _shown_now(shell, result):
    """A training run is shown by the magic itself: `run = %mv_train ...` assigns it, and IPython
    shows nothing for an assignment (an executed notebook kept two empty outputs). The run then
    skips the display IPython asks for in the same cell, so an unassigned one is shown once."""
    show = getattr(result, "show_in_cell", None)
    if show is not None and getattr(shell, "kernel", None) is not None:
        show(lambda: _cell_number(shell))
    return result


def _make_magic(shell, name: str):
    def magic(line: str = ""):
        from .widgets.progress import for_shell

        progress = for_shell(shell)
        try:
            result = _run_verb(shell, name, line, progress)
        except KeyboardInterrupt as exc:   # the kernel's interrupt: one line saying what it left
            raise StoppedByUser(interrupted_message(exc)) from None
        except Exception as exc:   # noqa: BLE001 - the last line of defence, as in the CLI
            error = as_error(exc)
            if error is exc or (isinstance(error, InternalError) and wants_traceback()):
                raise
            raise error from exc
        finally:
            progress.close()
        return _shown_now(shell, result)

    magic.__name__ = f"mv_{name}"
    magic.__doc__ = f"%mv_{name}: same arguments as `nbversion {name}` (try `%mv_{name} --help`)."
    return magic


def register(shell) -> None:
    from .commands import all_verbs

    for name in all_verbs():
        shell.register_magic_function(_make_magic(shell, name), "line", f"mv_{name}")
    shell.set_custom_exc((NbversionError,), show_error)
    from .logs import configure_from_settings
    configure_from_settings(read_config=False)   # %load_ext stays fast: the environment only
