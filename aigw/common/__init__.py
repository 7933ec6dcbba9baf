"""Pieces every layer may use: they import nothing from aigw but each other."""
