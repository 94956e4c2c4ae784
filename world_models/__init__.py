"""Learned forward models and the shared supervised trainer."""
