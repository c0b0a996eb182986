"""The models: recurrent cells, their initialisation, and settings turned into seeded modules."""
