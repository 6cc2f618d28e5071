"""bittorrented's browser pages."""
