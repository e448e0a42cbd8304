"""Checks shardgan's TensorBoard event files with TensorBoard's own readers (run in a venv with `tensorboard`).

  tensorboard_check.py read RUN_DIR              EventAccumulator reads what metrics.jsonl, samples/ and config.toml hold
  tensorboard_check.py truncated RUN_DIR SCRATCH  a copy cut mid-record reads up to its last whole record
  tensorboard_check.py server RUN_DIR URL         a running `tensorboard --logdir RUN_DIR` serves the same scalars
"""
import glob
import json
import math
import os
import shutil
import struct
import sys
import time
import urllib.parse
import urllib.request

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def accumulator(path):
    acc = EventAccumulator(path, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def expected_scalars(run):
    """metrics.jsonl as TensorBoard series: {tag: {step: value}} (train/<key>, eval/<key>[/<class>])."""
    series = {}
    for line in open(os.path.join(run, "metrics.jsonl")):
        row = json.loads(line)
        group = "eval" if row.get("kind") == "eval" else "train"
        for key, value in row.items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for name, v in items:
                if key == "step" or isinstance(v, (str, bool)) or v is None:
                    continue
                tag = f"{group}/{key}" + (f"/{name}" if name is not None else "")
                steps = series.setdefault(tag, {})
                assert row["step"] not in steps, f"metrics.jsonl: {tag} twice at step {row['step']}"
                steps[row["step"]] = float(v)
    return series


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def check_read(run):
    files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
    assert len(files) == 1, f"one event file after the resume (the older one superseded): {files}"
    # The resumed file: its version, then START at the resumed step (readers drop what they hold from there).
    events = list(event_file_loader.EventFileLoader(files[0]).Load())
    assert events[0].file_version == "brain.Event:2", events[0]
    assert events[1].session_log.status == events[1].session_log.START and events[1].step == 20, events[1]

    acc = accumulator(run)
    want = expected_scalars(run)
    tags = acc.Tags()
    assert set(tags["scalars"]) == set(want), (sorted(set(tags["scalars"]) ^ set(want)))
    for tag, steps in want.items():
        got = acc.Scalars(tag)
        got_steps = [s.step for s in got]
        assert got_steps == sorted(steps), f"{tag}: steps {got_steps}, metrics.jsonl {sorted(steps)}"
        for s in got:  # float32 in the event, float64 in the JSON
            w = steps[s.step]
            assert (math.isnan(w) and math.isnan(s.value)) or abs(s.value - w) <= 1e-6 * max(1.0, abs(w)), (tag, s, w)
    loss_steps = [s.step for s in acc.Scalars("train/loss_d")]
    assert loss_steps == [10, 20, 30, 40], loss_steps
    assert [s.step for s in acc.Scalars("eval/fd_clf")] == [0, 40]
    for tag in ("train/lr_g", "train/lr_d", "train/grad_norm_g", "train/grad_norm_d", "eval/class_consistency"):
        assert tag in want, tag
    assert all(s.value > 0 for s in acc.Scalars("train/grad_norm_d")), "D's gradient norm is logged"

    images = acc.Images("samples")
    assert [i.step for i in images] == [20, 40], [i.step for i in images]
    for i in images:
        with open(os.path.join(run, "samples", f"step-{i.step:06d}.png"), "rb") as f:
            png = f.read()
        assert i.encoded_image_string == png, f"grid of step {i.step}: not the PNG in samples/"
        assert png_size(i.encoded_image_string) == (i.width, i.height), (png_size(png), i.width, i.height)

    text = acc.Tensors("config")
    assert len(text) == 1, [t.step for t in text]
    markdown = tensor_util.make_ndarray(text[0].tensor_proto).item().decode()
    config = open(os.path.join(run, "config.toml")).read()
    assert markdown == "".join("    " + line + "\n" for line in config.splitlines()), markdown[:200]

    content = acc.PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(c) for tag, c in content.items()}
    experiment = data["_hparams_/experiment"].experiment
    names = [h.name for h in experiment.hparam_infos]
    for name in ("optim.lr_g", "model.g_width", "train.batch_size", "model.conditional", "model.arch", "ranks"):
        assert name in names, (name, names)
    metrics = [m.name.tag for m in experiment.metric_infos]
    assert metrics == ["train/loss_d", "train/loss_g", "eval/fd_clf", "eval/class_consistency"], metrics
    start = data["_hparams_/session_start_info"].session_start_info
    assert start.hparams["optim.lr_g"].number_value == 2e-4, start.hparams["optim.lr_g"]
    assert start.hparams["ranks"].number_value == 2 and start.hparams["model.conditional"].bool_value
    assert start.hparams["model.arch"].string_value == "dcgan", start.hparams["model.arch"]
    end = data["_hparams_/session_end_info"].session_end_info
    assert end.status == 1, end  # STATUS_SUCCESS: trained to the end
    print(f"ok 1: EventAccumulator: {len(want)} scalar series = metrics.jsonl (steps once after the resume), "
          f"{len(images)} grids = samples/*.png, the configuration, {len(names)} hparams and {len(metrics)} metrics")


def records(path):
    """(offset, length) of each TFRecord of `path`."""
    out, pos, data = [], 0, open(path, "rb").read()
    while pos + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        out.append((pos, 16 + length))
        pos += 16 + length
    return out


def check_truncated(run, scratch):
    (src,) = glob.glob(os.path.join(run, "events.out.tfevents.*"))
    os.makedirs(scratch)
    cut = os.path.join(scratch, os.path.basename(src))
    shutil.copy(src, cut)
    events = list(event_file_loader.EventFileLoader(src).Load())
    # The record holding loss_d at step 40, cut in its middle.
    index = next(k for k, e in enumerate(events) if e.step == 40 and any(v.tag == "train/loss_d" for v in e.summary.value))
    offset, length = records(src)[index]
    os.truncate(cut, offset + length // 2)
    acc = accumulator(scratch)
    steps = [s.step for s in acc.Scalars("train/loss_d")]
    assert steps == [10, 20, 30], steps
    print(f"ok 2: cut in record {index} (of {len(events)}): loss_d reads steps {steps}, no error")


def check_server(run, url):
    def get(path, **query):
        with urllib.request.urlopen(url + path + "?" + urllib.parse.urlencode(query), timeout=60) as r:
            return json.load(r)

    want = expected_scalars(run)
    for _ in range(120):  # the server loads the folder in the background
        runs = get("data/runs")
        if runs:
            break
        time.sleep(0.5)
    assert runs == ["."], runs
    tags = get("data/plugin/scalars/tags")["."]
    assert set(tags) == set(want), sorted(set(tags) ^ set(want))
    points = get("data/plugin/scalars/scalars", run=".", tag="train/loss_d")
    steps = [p[1] for p in points]
    assert steps == sorted(want["train/loss_d"]), steps
    for _, step, value in points:
        assert abs(value - want["train/loss_d"][step]) <= 1e-6 * max(1.0, abs(want["train/loss_d"][step]))
    print(f"ok 3: tensorboard --logdir at {url}: {len(tags)} scalar tags, train/loss_d at steps {steps}")


if __name__ == "__main__":
    what = sys.argv[1]
    {"read": lambda: check_read(sys.argv[2]), "truncated": lambda: check_truncated(sys.argv[2], sys.argv[3]),
     "server": lambda: check_server(sys.argv[2], sys.argv[3])}[what]()
