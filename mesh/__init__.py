"""mesh: a serving mesh for constellations of small, specialized AI models.

Importing the package is cheap on purpose (no Ray, no ONNX Runtime): heavy modules are imported
where they are used, so `mesh --help` answers at once.
"""

__version__ = "0.1.0"
