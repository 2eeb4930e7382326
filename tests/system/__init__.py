"""Process-level suites: durability, replicas, deployment, hostile input, fuzzing, docs, the house rules"""
