"""Applications: thin layers over a trained AutoEncoder."""
