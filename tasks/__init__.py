"""Built-in tasks, registered through the `banel` entry-point group like any third-party task."""
