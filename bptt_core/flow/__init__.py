"""The flow engine: Jacobian products, norms, spectra, mean-field theory, unroll and verdicts."""
