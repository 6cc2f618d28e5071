"""bittorrented's external systems, one module each."""
