"""Reading an endpoint's API key from where the manifest says it lives.

Manifests are shared, signed and shown to operators, so they name where the key is (an
environment variable of the replica, or a secret file such as a mounted Kubernetes secret) and
never hold it. Errors name the variable or file, never the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mesh.config import OpenAIModelConfig
from mesh.errors import ModelLoadError

NO_KEY = "no-key"
"""Sent when the manifest names no key: local servers (llama.cpp, Ollama) ignore it, and the
client refuses to start without one."""


def read_api_key(config: OpenAIModelConfig, model: str, resolve: Callable[[str], Path]) -> str:
    """The key for ``config``'s endpoint; ModelLoadError names the variable or file that is
    missing or empty (``model`` names the expert's model in that error)."""
    if config.api_key_env:
        value = os.environ.get(config.api_key_env, "").strip()
        if not value:
            raise ModelLoadError(
                model, f"environment variable {config.api_key_env} (model.api_key_env) is not "
                "set or empty in the replica's environment"
            )
        return value
    if config.api_key_file:
        path = resolve(config.api_key_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ModelLoadError(
                model, f"cannot read the key file {path} (model.api_key_file): {e.strerror}"
            ) from None
        value = lines[0].strip() if lines else ""
        if not value:
            raise ModelLoadError(model, f"the key file {path} (model.api_key_file) is empty")
        return value
    return NO_KEY
