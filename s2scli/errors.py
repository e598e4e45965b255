"""The one exception type that the command line turns into a one-line message and an exit code."""


class S2SError(Exception):
    """A problem the user can fix: bad input, a missing file, an option out of range.

    The message is complete on its own, names the file (and line) where there is one, and is printed by
    the CLI as ``s2s <command>: error: <message>`` with exit status ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
