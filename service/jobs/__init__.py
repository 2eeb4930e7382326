"""Background jobs: the job store, reindex (local or Ray), catalogue scans, retention."""
