"""Learning: training, truncated BPTT and RTRL, the training player, the calculator's numbers."""
