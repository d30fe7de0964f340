"""One exception type for every mistake a user can make, shown as a single line.

Notebooks are read by people, so bad input must end in one line that names the problem and the fix,
raised before any training starts, instead of a traceback from deep inside torch.
"""


class FtkitError(ValueError):
    """A user-facing error: the message names the problem and how to fix it."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line


def one_of(kind: str, name, valid) -> FtkitError:
    """Error for an unknown name, listing the valid ones."""
    return FtkitError(f"unknown {kind} {name!r}: choose one of {', '.join(sorted(valid))}")


def _short_traceback(shell, etype, value, tb, tb_offset=None):
    # IPython custom exception handler: show "FtkitError: message" and nothing else.
    return [f"{etype.__name__}: {value}"]


def install_notebook_handler() -> None:
    """Inside IPython/Jupyter, print FtkitError as one line instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((FtkitError,), _short_traceback)
