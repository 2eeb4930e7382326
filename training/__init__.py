"""Calibration of scores, evaluation harness and fine-tuning. Uses the ``index`` library."""
