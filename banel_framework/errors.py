"""Errors the CLI turns into a one-line message and exit status 2."""


class BanelError(Exception):
    """A problem the user can fix (bad input, unknown name, missing file)."""


class ConfigError(BanelError):
    """The configuration is invalid; the message names the field."""


class UnknownComponentError(BanelError):
    """A task, model or method name that no plugin registered."""


class BudgetExceeded(BanelError):
    """An oracle call would spend more NREs than the budget allows."""
