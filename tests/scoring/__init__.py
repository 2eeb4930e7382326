"""Tests of scoring/"""
