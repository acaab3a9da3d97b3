"""Logging (and, later, metrics and trace ids) for every mesh process."""
