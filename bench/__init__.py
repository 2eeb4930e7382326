import index  # noqa: F401,E402  (sets OMP_WAIT_POLICY=PASSIVE before any benchmark loads torch, as the service does)
