"""A plugin with a misspelled hook name: caught when it registers."""

from banel_framework import hookimpl


@hookimpl
def register_taks(register):  # misspelled on purpose
    pass
