"""Running many jobs at once: the batch runner (`runner`), progress display, signals and
disk checks."""
