"""Questions ``make demo`` asks a freshly started mesh, with the expert that should answer each.

Written as a new user would ask them, not copied from the manifests' examples, so the demo also
shows the router generalising. The digits expert takes tensors only, so it has no question here.
"""

from __future__ import annotations

DEMO_QUESTIONS: list[tuple[str, str]] = [
    (
        "My biopsy report lists mean radius 20.6, worst concave points 0.24 and worst area "
        "2400. Does that look malignant?",
        "breast-cancer",
    ),
    ("Which barley variety should I sow at Waseca for the biggest harvest?", "crop-yield"),
    ("How much barley per acre would Velvet give at Grand Rapids?", "crop-yield"),
    (
        "A 62-year-old patient has a BMI of 34, blood pressure 112 and glucose 118. How is their "
        "diabetes likely to progress over the next year?",
        "diabetes-progression",
    ),
    ("How do context managers work together with Python's with statement?", "python-docs"),
    ("How can I stop a for loop early in Python?", "python-docs"),
]
