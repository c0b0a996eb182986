"""Sweeps: grids of networks measured as the single-network pages measure them."""
