"""Sequences to run the models on: seeded synthetic tasks."""
