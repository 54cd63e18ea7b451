"""Default implementations of BaNEL's parts, registered through the `banel` entry-point group."""
