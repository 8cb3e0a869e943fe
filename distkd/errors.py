"""One exception type for user mistakes: the command-line tools print its message as one line."""


class UserError(Exception):
    """Bad input the user can fix (path, name, config, checkpoint); the message says how."""
