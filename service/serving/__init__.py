"""The model and index a replica answers with: loading, batching, index sync, artefacts, generations."""
