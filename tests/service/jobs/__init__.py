"""Tests of service/jobs/."""
