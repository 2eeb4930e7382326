"""Code that runs on every check: evidence features, scorers and the calibration artefact they load.

``service/`` scores checks with it and ``training/`` fits and evaluates with it, so neither owns it.
Imports ``index`` only.
"""
