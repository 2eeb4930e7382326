"""The counterfeit-check HTTP service: API, auth, storage and jobs. Uses the ``index`` library."""
