"""A plugin that fails to import, to show that one broken plugin never breaks the tool."""

raise ImportError("this plugin needs a package that is not installed (on purpose)")
