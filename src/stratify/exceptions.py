"""The one exception type users see: bad input, named and explained.

Every check of user input (config files, trial data, CLI arguments) raises
:class:`StratifyInputError` with a message that names the field or column and
what is wrong with it. The CLI prints the message alone and exits with status 2;
anything else escaping is a bug and keeps its traceback.
"""


class StratifyInputError(ValueError):
    """Bad user input: a config field, a data column or an argument.

    The message is meant for the user as-is: it names the offending field or
    column and says what is wrong, in one line.
    """
