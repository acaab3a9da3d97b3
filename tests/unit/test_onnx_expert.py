"""The onnx runtime on the real demo models: answers, tensor checks, batching, load errors.

Everything runs the models built by the ``demo_artifacts`` fixture from public data; nothing is
mocked, so a wrong feature order, a broken export or a parsing slip shows up as a wrong answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mesh.config import ExpertManifest, load_manifest
from mesh.errors import InvalidInput, ModelLoadError
from mesh.experts import build_expert
from mesh.experts.onnx import OnnxExpert
from mesh.experts.onnx.textfeatures import FeatureParser
from mesh.types import ExpertInput, TurnRecord

MANIFESTS = Path(__file__).resolve().parents[2] / "mesh" / "demo" / "manifests"


def manifest(name: str) -> ExpertManifest:
    return load_manifest(MANIFESTS / f"{name}.yaml")


@pytest.fixture(scope="module")
def experts(demo_artifacts: Path) -> dict[str, OnnxExpert]:
    """Every demo expert, loaded once for the module."""
    loaded: dict[str, OnnxExpert] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        expert = build_expert(load_manifest(path))
        assert isinstance(expert, OnnxExpert)
        expert.load()
        loaded[expert.name] = expert
    return loaded


def ask(expert: OnnxExpert, text: str = "", **kwargs: object) -> tuple[str, dict[str, str]]:
    out = expert.infer(ExpertInput(text=text, **kwargs))  # type: ignore[arg-type]
    return out.text, out.metadata


# ----------------------------------------------------------------------- breast-cancer


def test_breast_cancer_rows_from_the_data_set_classify_right(
    experts: dict[str, OnnxExpert],
) -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    malignant = data.data[data.target == 0][:40].astype(np.float32)
    benign = data.data[data.target == 1][:40].astype(np.float32)
    out = experts["breast-cancer"].infer(ExpertInput(tensors={"features": malignant}))
    assert out.tensors["probabilities"].shape == (40, 2)
    assert (out.tensors["label"] == 0).mean() >= 0.9
    assert out.metadata["label"] == "malignant"
    out = experts["breast-cancer"].infer(ExpertInput(tensors={"features": benign}))
    assert (out.tensors["label"] == 1).mean() >= 0.9


def test_breast_cancer_single_row_tensor_answers_in_words(experts: dict[str, OnnxExpert]) -> None:
    from sklearn.datasets import load_breast_cancer

    row = load_breast_cancer().data[0]  # a malignant case, sent as float64 [30]
    out = experts["breast-cancer"].infer(ExpertInput(tensors={"features": row}))
    assert out.text.startswith("Malignant (probability ")
    assert "455 cases" in out.text and "held-out accuracy" in out.text
    assert float(out.metadata["probability"]) > 0.9


def test_breast_cancer_reads_measurements_from_text(experts: dict[str, OnnxExpert]) -> None:
    text, meta = ask(
        experts["breast-cancer"],
        "FNA: mean radius 20.6, worst concave points 0.26, Worst Area: 2400 and radius se 1.1",
    )
    assert meta["given"].split(",") == ["mean radius", "radius error", "worst area",
                                        "worst concave points"]
    assert meta["label"] == "malignant"
    assert "You gave 4 of 30 measurements" in text and "training medians" in text


def test_breast_cancer_without_measurements_explains_instead_of_guessing(
    experts: dict[str, OnnxExpert],
) -> None:
    text, meta = ask(experts["breast-cancer"], "Is my tumour cancerous?")
    assert meta["n_given"] == "0" and "label" not in meta
    assert "found none" in text and "mean radius" in text


# ----------------------------------------------------------------------- crop-yield


def _barley() -> object:
    from vega_datasets import local_data

    return local_data.barley()


def test_crop_yield_prediction_is_in_the_data_range(experts: dict[str, OnnxExpert]) -> None:
    df = _barley()
    text, meta = ask(experts["crop-yield"], "Expected yield for Manchuria at Waseca?")
    value = float(meta["prediction"])
    cell = df[(df["variety"] == "Manchuria") & (df["site"] == "Waseca")]["yield"]  # type: ignore[index]
    assert df["yield"].min() <= value <= df["yield"].max()  # type: ignore[index]
    assert abs(value - float(cell.mean())) < 10
    assert text.startswith("Expected yield for Manchuria at Waseca: ")
    assert "bushels/acre" in text and "averages over 1931 and 1932" in text


def test_crop_yield_compares_varieties_best_first(experts: dict[str, OnnxExpert]) -> None:
    out = experts["crop-yield"].infer(ExpertInput(text="Which variety does best at Morris?"))
    values = out.tensors["prediction"]
    assert out.metadata["rows"] == "10" and values.shape == (10,)
    assert "by variety" in out.text and "all 10 are compared" in out.text
    listed = out.text.split(" — ")[1].split("; ")
    assert float(listed[0].rsplit(": ", 1)[1]) == pytest.approx(float(values.max()), abs=0.06)


def test_crop_yield_aliases_and_years(experts: dict[str, OnnxExpert]) -> None:
    text, meta = ask(experts["crop-yield"], "yield of wisconsin no 38 at St. Paul in 1932?")
    assert meta["given"] == "variety,site,year"
    assert "for Wisconsin No. 38 at University Farm in 1932" in text


def test_crop_yield_carries_values_from_its_earlier_turns(experts: dict[str, OnnxExpert]) -> None:
    earlier = TurnRecord("Expected yield for Trebi at Waseca?", "…", ("crop-yield",))
    unrelated = TurnRecord("Is Velvet a good name for a cat?", "…", ("python-docs",))
    text, _ = ask(experts["crop-yield"], "And at Morris?", history=[earlier, unrelated])
    assert text.startswith("Expected yield for Trebi at Morris")
    assert "carried over" in text


def test_crop_yield_tensor_with_bad_category_code(experts: dict[str, OnnxExpert]) -> None:
    with pytest.raises(InvalidInput) as err:
        experts["crop-yield"].infer(
            ExpertInput(tensors={"features": np.array([[1, 9, 0]], dtype=np.float32)})
        )
    assert err.value.field == "input.tensors['features']"
    assert "site" in str(err.value) and "0-5" in str(err.value)


# ----------------------------------------------------------------------- diabetes


def test_diabetes_reads_age_and_responds_to_bmi(experts: dict[str, OnnxExpert]) -> None:
    lean = ask(experts["diabetes-progression"], "58-year-old, BMI 20, blood pressure 90")[1]
    heavy = ask(experts["diabetes-progression"], "58-year-old, BMI 40, blood pressure 90")[1]
    assert lean["given"] == "age,bmi,blood pressure"
    assert 25 <= float(lean["prediction"]) <= 346
    assert float(heavy["prediction"]) > float(lean["prediction"]) + 30


def test_diabetes_warns_outside_training_range(experts: dict[str, OnnxExpert]) -> None:
    text, _ = ask(experts["diabetes-progression"], "bmi 70 and glucose 100")
    assert "bmi 70 lies outside the training range" in text


# ----------------------------------------------------------------------- python-docs


def test_python_docs_for_loop(experts: dict[str, OnnxExpert]) -> None:
    text, meta = ask(experts["python-docs"], "how does a for loop work")
    assert meta["topic"] == "for"
    assert '"for" statement' in text and float(meta["score"]) > 0.4
    assert len(text) < 900  # trimmed to a readable length


def test_python_docs_top_k(experts: dict[str, OnnxExpert]) -> None:
    out = experts["python-docs"].infer(
        ExpertInput(text="What does the yield keyword do?", parameters={"top_k": "3"})
    )
    scores = json.loads(out.metadata["scores"])
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert out.tensors["indices"].shape == (3,)
    assert out.text.count("Also relevant") == 2


@pytest.mark.parametrize("bad", ["abc", "0", "11", "2.5"])
def test_python_docs_rejects_bad_top_k(experts: dict[str, OnnxExpert], bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        experts["python-docs"].infer(ExpertInput(text="what is a tuple", parameters={"top_k": bad}))
    assert err.value.field == "input.parameters['top_k']"


def test_python_docs_says_when_nothing_matches(experts: dict[str, OnnxExpert]) -> None:
    text, _ = ask(experts["python-docs"], "What is the capital of France?")
    assert text.startswith("Nothing in the Python documentation matches this closely")


# ----------------------------------------------------------------------- digits (tensors)


def test_digits_classifies_real_images(experts: dict[str, OnnxExpert]) -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = data.images[-100:].astype(np.float32)
    out = experts["digits"].infer(ExpertInput(tensors={"image": images}))
    assert (out.tensors["label"] == data.target[-100:]).mean() >= 0.93
    single = experts["digits"].infer(ExpertInput(tensors={"image": images[7]}))
    assert single.text.startswith(f"This looks like the digit {data.target[-93]} (p=")
    assert single.metadata["label"] == str(data.target[-93])


@pytest.mark.parametrize(
    ("tensors", "field", "message"),
    [
        ({"image": np.zeros(2, dtype=np.int64)}, "input.tensors['image']",
         "expected float32 [n, 8, 8], got int64 [2]"),
        ({"image": np.zeros((1, 8, 7), dtype=np.float32)}, "input.tensors['image']",
         "got float32 [1, 8, 7]"),
        ({"image": np.zeros((1, 64), dtype=np.float32)}, "input.tensors['image']",
         "expected float32 [n, 8, 8]"),
        ({"image": np.zeros((0, 8, 8), dtype=np.float32)}, "input.tensors['image']", "no rows"),
        ({"image": np.full((1, 8, 8), np.nan, dtype=np.float32)}, "input.tensors['image']",
         "non-finite"),
        ({"imgae": np.zeros((1, 8, 8), dtype=np.float32)}, "input.tensors['imgae']",
         "unknown tensor; this expert takes 'image' float32 [n, 8, 8]"),
        ({"image": [[0.0] * 8] * 8}, "input.tensors['image']", "got list"),
    ],
)
def test_digits_rejects_malformed_tensors(
    experts: dict[str, OnnxExpert], tensors: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        experts["digits"].infer(ExpertInput(tensors=tensors))  # type: ignore[arg-type]
    assert err.value.field == field
    assert message in str(err.value)


def test_tensor_expert_refuses_text_only(experts: dict[str, OnnxExpert]) -> None:
    with pytest.raises(InvalidInput) as err:
        experts["digits"].infer(ExpertInput(text="which digit is this?"))
    assert err.value.field == "input.tensors"


def test_missing_feature_tensor_is_named(experts: dict[str, OnnxExpert]) -> None:
    with pytest.raises(InvalidInput) as err:
        experts["breast-cancer"].infer(
            ExpertInput(tensors={"feature": np.zeros((1, 30), np.float32)})
        )
    assert err.value.field == "input.tensors['feature']"
    with pytest.raises(InvalidInput) as err:
        experts["breast-cancer"].infer(
            ExpertInput(tensors={"features": np.zeros((2, 29), np.float32)})
        )
    assert "expected float32 [n, 30], got float32 [2, 29]" in str(err.value)


@pytest.mark.parametrize("name", ["breast-cancer", "python-docs", "digits"])
def test_empty_request_is_invalid(experts: dict[str, OnnxExpert], name: str) -> None:
    with pytest.raises(InvalidInput) as err:
        experts[name].infer(ExpertInput(text="   "))
    assert err.value.field == "input"


# ----------------------------------------------------------------------- batching


def test_batch_matches_single_requests_and_isolates_errors(experts: dict[str, OnnxExpert]) -> None:
    from sklearn.datasets import load_breast_cancer

    rows = load_breast_cancer().data[:3].astype(np.float32)
    requests = [
        ExpertInput(tensors={"features": rows[:2]}),
        ExpertInput(text="mean radius 11, worst area 500"),
        ExpertInput(tensors={"features": np.zeros((1, 5), np.float32)}),  # bad
        ExpertInput(tensors={"features": rows[2:]}),
    ]
    expert = experts["breast-cancer"]
    settled = expert.infer_batch_settled(requests)
    assert isinstance(settled[2], InvalidInput)
    for i in (0, 1, 3):
        alone = expert.infer(requests[i])
        got = settled[i]
        assert not isinstance(got, Exception)
        np.testing.assert_allclose(
            got.tensors["probabilities"], alone.tensors["probabilities"], atol=1e-6
        )
        assert got.text == alone.text
    with pytest.raises(InvalidInput):
        expert.infer_batch(requests)
    outs = expert.infer_batch([requests[0], requests[3]])
    assert [o.tensors["label"].shape for o in outs] == [(2,), (1,)]


def test_retrieval_batch(experts: dict[str, OnnxExpert]) -> None:
    outs = experts["python-docs"].infer_batch(
        [ExpertInput(text="how does a for loop work"),
         ExpertInput(text="what does the import statement do", parameters={"top_k": "2"})]
    )
    assert outs[0].metadata["topic"] == "for"
    assert outs[1].metadata["topic"] == "import"
    assert outs[1].tensors["scores"].shape == (2,)


# ----------------------------------------------------------------------- load errors


def _with_model(name: str, **changes: str) -> ExpertManifest:
    m = manifest(name)
    return m.model_copy(update={"model": m.model.model_copy(update=changes)})


def test_missing_model_names_the_path(demo_artifacts: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    expert = OnnxExpert(_with_model("breast-cancer", path=str(missing)))
    with pytest.raises(ModelLoadError) as err:
        expert.load()
    assert err.value.model == str(missing)
    assert "does not exist" in str(err.value)
    assert not expert.ready()


def test_corrupt_model_names_the_path(demo_artifacts: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelLoadError) as err:
        OnnxExpert(_with_model("digits", path=str(corrupt))).load()
    assert err.value.model == str(corrupt)
    assert "not a loadable ONNX model" in str(err.value)


def test_corrupt_or_mismatched_sidecar(demo_artifacts: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError) as err:
        OnnxExpert(_with_model("breast-cancer", sidecar=str(bad))).load()
    assert err.value.model == str(bad)
    # The crop-yield sidecar describes 3 features; the breast-cancer model takes 30.
    other = str(demo_artifacts / "crop_yield.json")
    with pytest.raises(ModelLoadError) as err:
        OnnxExpert(_with_model("breast-cancer", sidecar=other, task="tabular-regression")).load()
    assert "do not match the sidecar" in str(err.value)


def test_retrieval_refuses_another_embedder(demo_artifacts: Path, tmp_path: Path) -> None:
    data = json.loads((demo_artifacts / "python_docs.json").read_text(encoding="utf-8"))
    data["embedder"] = "some-other-embedder"
    sidecar = tmp_path / "docs.json"
    sidecar.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelLoadError) as err:
        OnnxExpert(_with_model("python-docs", sidecar=str(sidecar))).load()
    assert "embedded with" in str(err.value)


def test_unset_artifacts_variable_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESH_DEMO_ARTIFACTS", raising=False)
    with pytest.raises(ModelLoadError) as err:
        OnnxExpert(manifest("digits")).load()
    assert "MESH_DEMO_ARTIFACTS" in str(err.value)


# ----------------------------------------------------------------------- text parsing


def test_parser_prefers_longest_names_and_reads_connectors(experts: dict[str, OnnxExpert]) -> None:
    from mesh.experts.onnx.tabular import TabularAdapter

    adapter = experts["breast-cancer"]._adapter
    assert isinstance(adapter, TabularAdapter)
    parser = FeatureParser(adapter.features)
    parsed = parser.parse("Worst radius: 25.4; radius is 17.9; mean_texture=10.4; area (px) 1001")
    assert parsed.numeric == {
        "worst radius": 25.4, "mean radius": 17.9, "mean texture": 10.4, "mean area": 1001.0
    }
    assert parser.parse("radiusx 3, smoothness").numeric == {}
