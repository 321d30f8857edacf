"""The base class of every error the user can act on (bad config, bad corpus, refused query, ...).

The CLI catches `MixoptError` and prints its message on one line (exit code 2, no traceback);
anything else is a bug and keeps its traceback.
"""


class MixoptError(Exception):
    """A problem with the user's input or files, explained by its message alone."""
