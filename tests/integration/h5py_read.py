"""Reads shardgan shards with h5py (a different HDF5 client) and checks them against manifest.json."""
import json
import os
import sys

import h5py
import numpy as np


def check(folder):
    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    assert manifest["format"] == "shardgan-shards", manifest["format"]
    h, w, c = manifest["image_shape"]
    total = 0
    missing_ages = 0
    counts = np.zeros(len(manifest["class_names"]), dtype=np.int64)
    for index, shard in enumerate(manifest["shards"]):
        with h5py.File(os.path.join(folder, shard["file"]), "r") as f:
            images = f["images"][:]
            assert images.dtype == np.uint8 and images.shape == (shard["count"], h, w, c), images.shape
            assert f["images"].chunks is not None, "images must be chunked"
            labels = f["labels"][:]
            assert labels.dtype == np.int64 and labels.shape == (shard["count"],)
            counts += np.bincount(labels, minlength=len(counts))
            ids = f["ids"].asstr()[:]
            assert len(ids) == shard["count"] and all(ids)
            assert list(f.attrs["class_names"]) == manifest["class_names"]
            assert f.attrs["source"] == manifest["source"]
            assert f.attrs["format_version"] == manifest["format_version"]
            assert f.attrs["shard_index"] == index and f.attrs["num_shards"] == len(manifest["shards"])
            if manifest["source"] == "cifar10":
                source = f["source_labels"][:]
                assert set(source.tolist()) <= {3, 5} and (labels == (source == 5)).all()
                assert ids[0].startswith("data_batch_1.bin#")
            if manifest["source"] == "ham10000":
                for key in ("lesion_id", "dx_type", "sex", "localization", "dataset"):
                    assert len(f["meta"][key].asstr()[:]) == shard["count"], key
                age = f["meta/age"][:]
                assert age.dtype == np.float32
                missing_ages += int(np.isnan(age).sum())
                assert all(i.startswith("ISIC_") for i in ids)
        total += shard["count"]
    if manifest["source"] == "ham10000":
        assert missing_ages > 0, "empty age cells must read back as NaN"
    assert total == manifest["total_count"], (total, manifest["total_count"])
    assert counts.tolist() == manifest["class_counts"], (counts, manifest["class_counts"])
    print(f"h5py read {folder}: {total} images, {len(manifest['shards'])} shard(s) OK")


for folder in sys.argv[1:]:
    check(folder)
