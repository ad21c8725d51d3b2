"""digest: the day's trending research papers, personalised for each reader."""

__version__ = "0.1.0"

__all__ = ["__version__"]
