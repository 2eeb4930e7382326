"""Tests of service/exchange/."""
