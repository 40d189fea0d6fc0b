"""fsrouter: an ACD (automatic call distribution) daemon for FreeSWITCH."""

__version__ = "0.1.0"
__all__ = ["__version__"]
