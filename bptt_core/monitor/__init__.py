"""The gradient-flow monitor for a user's own training loop, and its run folders."""
