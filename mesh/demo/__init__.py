"""The bundled demo experts: real models trained at set-up from public data shipped in packages.

``build.py`` trains and exports them (``python -m mesh.demo.build OUT``), ``manifests/`` holds
their cards, ``mesh.yaml`` is the embedded default mesh config and ``questions.py`` the questions
``make demo`` asks. Artifacts are built, never committed.
"""
