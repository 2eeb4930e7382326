"""Cross-cutting pieces every domain uses: auth and keys, audit, blobs, leases, metrics, limits, fetching, validation."""
