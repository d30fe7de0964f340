"""One exception type for every mistake a user can make, shown as a single line.

Notebooks are read by people, so bad input must end in one line that names the problem and the fix,
raised before any training starts, instead of a traceback from deep inside torch.
"""


class FtkitError(ValueError):
    """A user-facing error: the message names the problem and how to fix it."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line

    def _render_traceback_(self):
        # IPython/Jupyter hook: show "FtkitError: message" instead of the traceback
        return [f"{type(self).__name__}: {self}"]


def one_of(kind: str, name, valid) -> FtkitError:
    """Error for an unknown name, listing the valid ones."""
    return FtkitError(f"unknown {kind} {name!r}: choose one of {', '.join(sorted(valid))}")
