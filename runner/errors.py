"""The one exception type the CLI turns into a message and an exit code."""


class SignoffError(Exception):
    """A problem the user can fix (bad params, bad data, missing file).

    Carries the exit code so that the CLI never has to guess, and is printed
    without a traceback because the message already names the file and key.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
