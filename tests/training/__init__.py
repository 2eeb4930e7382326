"""Tests of training/ (offline)"""
