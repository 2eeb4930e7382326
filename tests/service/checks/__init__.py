"""Tests of service/checks/."""
