"""Tests of the service, one folder per domain package"""
