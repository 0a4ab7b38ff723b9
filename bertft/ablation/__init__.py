"""Ablation specs, grid expansion, the results store and the pytest plugin."""
