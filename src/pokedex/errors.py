"""The one exception type that user-facing commands turn into a clean one-line error."""


class PokedexError(Exception):
    """A problem the user can fix: bad input, missing file, failed check.

    The CLI prints its message on one line and exits with ``exit_code``; it never shows a
    traceback for it.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
