"""Synthetic data sets: rendered galaxies and SDSS-format spectra."""
