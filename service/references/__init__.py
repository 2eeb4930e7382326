"""Brands' reference images: registration, reads, deletion, and recomputing what is derived from them."""
