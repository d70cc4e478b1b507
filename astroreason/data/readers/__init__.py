"""Readers: one SampleSource per format (Galaxy10 HDF5, image and FITS folders, spectra, HF)."""
