"""crop-yield: expected barley yield for a variety at a Minnesota trial site.

Data: the Minnesota barley trials of 1931 and 1932 (Immer, Hayes & Powers, 1934): yield of ten
varieties at six sites in two years, 120 results, as bundled in the vega-datasets package.
Model: gradient-boosted trees on one-hot site and variety plus the year, all inside the ONNX
graph: the model input is three category codes (variety, site, year), so a program can send a
``features`` tensor without knowing the encoding, and the trees can learn site-by-year effects
(the famous Morris reversal) that an additive model cannot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mesh.demo.common import SPLIT_SEED, TEST_SIZE, save_sklearn_expert
from mesh.experts.onnx.sidecar import DataInfo, FeatureInfo, TabularSidecar, TargetInfo

MODEL = "crop_yield.onnx"
SIDECAR = "crop_yield.json"

_VARIETY_ALIASES = {
    "No. 457": ["number 457", "#457"],
    "No. 462": ["number 462", "#462"],
    "No. 475": ["number 475", "#475"],
    "Wisconsin No. 38": ["Wisconsin 38", "Wisconsin number 38", "Wisconsin"],
}
_SITE_ALIASES = {"University Farm": ["St. Paul", "Saint Paul", "St Paul"]}


def build(out: Path) -> list[Path]:
    """Train, evaluate on the held-out split, export; returns the files written."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.metrics import mean_absolute_error
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from vega_datasets import local_data

    df = local_data.barley()
    varieties = sorted(str(v) for v in df["variety"].unique())
    sites = sorted(str(s) for s in df["site"].unique())
    years = sorted(str(y) for y in df["year"].unique())
    x = np.stack(
        [
            df["variety"].map(varieties.index).to_numpy(),
            df["site"].map(sites.index).to_numpy(),
            df["year"].astype(str).map(years.index).to_numpy(),
        ],
        axis=1,
    ).astype(np.float32)
    y = df["yield"].to_numpy().astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED)
    encode = ColumnTransformer(
        [("onehot", OneHotEncoder(
            categories=[[float(i) for i in range(len(varieties))],
                        [float(i) for i in range(len(sites))]],
            sparse_output=False,
        ), [0, 1])],
        remainder="passthrough",  # the year code (0 = 1931, 1 = 1932) goes in as a number
    )
    model = Pipeline([
        ("encode", encode),
        ("trees", GradientBoostingRegressor(
            n_estimators=300, max_depth=3, learning_rate=0.05, random_state=0)),
    ]).fit(x_tr, y_tr)
    mae = float(mean_absolute_error(y_te, model.predict(x_te)))

    sidecar = TabularSidecar(
        task="tabular-regression",
        title="barley yield by variety, site and year in the Minnesota trials",
        model_description="gradient-boosted trees",
        input_noun="trial conditions",
        features=[
            FeatureInfo(name="variety", kind="categorical", description="barley variety",
                        values=varieties, value_aliases=_VARIETY_ALIASES, phrase="for {value}"),
            FeatureInfo(name="site", kind="categorical", description="Minnesota trial site",
                        values=sites, value_aliases=_SITE_ALIASES, phrase="at {value}"),
            FeatureInfo(name="year", kind="categorical", description="trial year",
                        values=years, phrase="in {value}", when_missing="average"),
        ],
        target=TargetInfo(label="Expected yield", unit="bushels/acre", decimals=1),
        metrics={"mae": round(mae, 2)},
        data=DataInfo(
            name="Minnesota barley trials of 1931-32",
            source="Immer, Hayes & Powers, Journal of the American Society of Agronomy 26, "
            "1934; as bundled in the vega-datasets package (barley.json)",
            licence="BSD-3-Clause (vega-datasets package)",
            row_noun="trial results",
            n_train=len(y_tr),
            n_test=len(y_te),
        ),
    )
    return save_sklearn_expert(
        model, x.shape[1], out, MODEL, SIDECAR,
        "Barley yield (bushels/acre) from variety, site, year codes", sidecar,
    )
