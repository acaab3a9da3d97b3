"""The ``openai`` runtime: any OpenAI-compatible chat/completions endpoint as an expert.

    expert.py    OpenAIExpert: the client, load/health checks, answers and streams
    convert.py   sampling options, client errors to mesh errors (chat messages: ../chat.py)
    keys.py      the API key, from an environment variable or a secret file, never the manifest
"""

from mesh.experts.openai.expert import OpenAIExpert

__all__ = ["OpenAIExpert"]
