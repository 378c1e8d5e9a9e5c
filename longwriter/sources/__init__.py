"""The user's own sources (issue: grounded writing): reading files into blocks (``read``),
cutting them into passages by structure (``chunk``), a cached index per run (``index``) and
hybrid BM25 + embedding retrieval (``retrieve``)."""

from .chunk import Passage
from .index import SourceIndex

__all__ = ["Passage", "SourceIndex"]
