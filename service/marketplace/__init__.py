"""Listings and the sellers behind them."""
