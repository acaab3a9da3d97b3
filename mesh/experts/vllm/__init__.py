"""The ``vllm`` runtime: a GPU LLM hosted by Ray Serve LLM (``ray.serve.llm``, vLLM engine).

    llm_config.py  the manifest as Ray Serve LLM's ``LLMConfig`` (a plain dict; no GPU needed)
    stream.py      chat requests for the engine, and its streamed events back to text pieces
    ingress.py     VllmIngress: the expert's Serve deployment in front of the engine's
    expert.py      VllmExpert: the Expert face (checks the GPU stack; never runs in-process)

vLLM is the ``gpu`` extra (``pip install 'mesh[gpu]'``); without it a vllm manifest still
loads (a hub routes to experts it does not host) but deploying or loading it fails with a
message naming the extra.
"""

from mesh.experts.vllm.expert import VllmExpert, require_gpu_stack
from mesh.experts.vllm.llm_config import serve_llm_config

__all__ = ["VllmExpert", "require_gpu_stack", "serve_llm_config"]
