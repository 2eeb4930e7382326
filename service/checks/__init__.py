"""Checking photos: the check path, its group-committed log, look-alike probes, brand policies and reviews."""
