"""Helpers shared by the test modules."""
import pytest

from ftkit import FtkitError


def one_line_error(call) -> str:
    """Run ``call()``, expect an FtkitError, check its message is one line, and return the message."""
    with pytest.raises(FtkitError) as excinfo:
        call()
    message = str(excinfo.value)
    assert "\n" not in message and message.strip(), f"not a one-line message: {message!r}"
    return message
