"""One way for every entry point to fail: a plain message naming the problem and the fix."""

import sys
from typing import Callable, NoReturn


class UserError(Exception):
    """A problem the user can fix (bad parameter, missing file, unreadable image, NaN loss...).

    The message is shown as is, on one line, so it must name the problem and the remedy.
    """


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's main(); a UserError becomes one line on stderr and exit status 2."""
    try:
        main()
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
