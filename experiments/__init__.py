"""One module per result: python -m experiments.<name>."""
