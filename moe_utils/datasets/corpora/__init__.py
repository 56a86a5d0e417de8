"""Three text domains as byte-level tokens: Wikipedia (en), GitHub-style code and DM Mathematics.

- ``wikipedia``: WikiText-2 (validation + test files of the *tokenized* release: words split by
  spaces, rare words as ``<unk>``, numbers as ``1 @,@ 000``), from ``$MOE_DATA_MIRROR/wikitext-2``
  or downloaded once into ``data/raw/wikitext-2``. One document per article.
- ``github``: the Python standard library's own ``.py`` sources of the running interpreter.
  One document per file.
- ``dm_mathematics``: question/answer pairs generated locally by DeepMind's ``mathematics_dataset``
  package, formatted ``"Q: ...\\nA: ...\\n"``. One document per example.

Tokens are UTF-8 bytes (vocabulary ``BYTE_VOCAB_SIZE`` = 256). All randomness comes from explicit seeds or generators.
"""

from __future__ import annotations

from .dm_math import dm_module_names, generate_dm_mathematics
from .domains import DOMAINS, build_domain_corpus, load_domain_texts
from .stdlib_code import STDLIB_EXCLUDED_DIRS, load_github, stdlib_python_files
from .text import (
    BYTE_VOCAB_SIZE,
    DomainCorpus,
    DomainText,
    decode_bytes,
    encode_bytes,
    sample_lm_batch,
    split_documents,
)
from .wikipedia import load_wikipedia

__all__ = [
    "BYTE_VOCAB_SIZE",
    "DOMAINS",
    "STDLIB_EXCLUDED_DIRS",
    "DomainCorpus",
    "DomainText",
    "build_domain_corpus",
    "decode_bytes",
    "dm_module_names",
    "encode_bytes",
    "generate_dm_mathematics",
    "load_domain_texts",
    "load_github",
    "load_wikipedia",
    "sample_lm_batch",
    "split_documents",
    "stdlib_python_files",
]
