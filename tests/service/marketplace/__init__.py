"""Tests of service/marketplace/."""
