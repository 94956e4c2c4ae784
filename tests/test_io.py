"""experiments.io files: npz arrays round-trip exactly; JSON results are strict JSON."""

import json
import math
import zipfile

import numpy as np
import pytest

from experiments import io, stages


@pytest.mark.parametrize("compress", [True, False])
def test_write_npz_round_trips_with_and_without_compression(tmp_path, compress):
    arrays = {"zeros": np.zeros((64, 64), np.float32), "ints": np.arange(10, dtype=np.int64)}
    path = io.write_npz(tmp_path / "a.npz", compress=compress, **arrays)
    loaded = io.read_npz(path)
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    with zipfile.ZipFile(path) as archive:
        methods = {info.compress_type for info in archive.infolist()}
    assert methods == {zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED}


def test_compression_is_the_default_and_shrinks_redundant_data(tmp_path):
    zeros = np.zeros((256, 256), np.float32)
    default = io.write_npz(tmp_path / "default.npz", zeros=zeros).stat().st_size
    stored = io.write_npz(tmp_path / "stored.npz", compress=False, zeros=zeros).stat().st_size
    assert stored > zeros.nbytes and default < stored / 20


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_results_json_is_strict_and_phase_records_keep_nan(tmp_path):
    row = {"mean": 1.5, "ci": [float("nan"), float("nan")], "worst": np.float32(-np.inf)}
    written = _strict(io.write_json(tmp_path / "metrics.json", {"rows": [row]}).read_text())
    assert written == {"rows": [{"mean": 1.5, "ci": [None, None], "worst": None}]}
    record = stages.Stages(tmp_path / "phases")
    record.save("eval", {"low": float("nan"), "high": float("inf")})
    values = record.load("eval").values
    assert math.isnan(values["low"]) and values["high"] == math.inf


def test_checkpoint_meta_keeps_the_order_of_history_columns(tmp_path):
    # A resumed fit reads its history back from the meta; its CSV columns must not re-sort.
    row = {"epoch": 0, "train_loss": 0.5, "val_loss": 0.6, "seconds": 1.0}
    meta = {"kind": "k", "history": [row]}
    path = io.save_checkpoint(tmp_path / "a.ckpt", {"w": np.zeros(2)}, meta)
    assert list(io.read_checkpoint_meta(path)["history"][0]) == list(row)
    assert list(io.read_csv(io.write_csv(tmp_path / "h.csv", [row]))[0]) == list(row)


def test_differing_fields_names_changed_missing_and_not_ignored_entries():
    first = {"a": 1, "b": [1, 2], "c": "x", "seed": 0}
    second = {"a": 1, "b": [1, 3], "d": 0, "seed": 1}
    assert io.differing_fields(first, second) == ["b", "c", "d", "seed"]
    assert io.differing_fields(first, second, ignore=("seed", "d")) == ["b", "c"]
    assert io.differing_fields(first, dict(first)) == []
