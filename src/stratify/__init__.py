"""stratify: who benefits from a treatment in a randomised survival trial."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stratify")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
