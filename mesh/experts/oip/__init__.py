"""The ``oip`` runtime: a model behind any Open Inference Protocol v2 gRPC server (Triton,
KServe, Seldon MLServer) as an expert.

    expert.py    OipExpert: load (server and model ready, metadata), answers, health
    client.py    the gRPC calls and their errors as mesh errors
    tensors.py   numpy arrays to and from the protocol's tensors (the one converter module)
"""

from mesh.experts.oip.expert import OipExpert

__all__ = ["OipExpert"]
