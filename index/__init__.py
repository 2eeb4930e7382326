"""Embedding models, image decoding, FAISS vector indexes and index generations.

A library: it never imports ``service`` or ``training`` and takes every parameter explicitly.
"""
