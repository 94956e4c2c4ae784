"""experiments.io arrays: compressed and stored npz files round-trip exactly."""

import zipfile

import numpy as np
import pytest

from experiments import io


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
