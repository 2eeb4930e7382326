"""Embedding models, image decoding, FAISS vector indexes and index generations.

A library: it never imports ``service`` or ``training`` and takes every parameter explicitly.
"""

import os as _os

# The model's OpenMP threads share the CPU with the image worker processes: spinning at barriers
# (OpenMP's default) burns cores the workers need. Must be set before torch loads OpenMP; an
# explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
