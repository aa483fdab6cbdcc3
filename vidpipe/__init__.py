"""vidpipe: a declarative, config-driven batch runner for multi-scene AI video."""

__version__ = "0.1.0"
