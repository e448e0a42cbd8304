"""Checks a headless-Chromium rendering of report.html: the screenshot is not blank and shows the curves in their
colours; the rendered DOM has every chart's polyline and the embedded sample grids.
Usage: report_check.py SCREENSHOT.png DOM.html"""
import sys

import numpy as np
from PIL import Image

shot = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
dom = open(sys.argv[2], encoding="utf-8").read()

assert shot.std() > 20, f"screenshot looks blank (pixel std {shot.std():.1f})"
curves = {"loss_d": (214, 39, 40), "loss_g": (31, 119, 180), "FD-clf": (140, 86, 75),
          "class consistency": (23, 190, 207)}
for name, rgb in curves.items():
    near = (np.abs(shot - np.array(rgb)).sum(axis=2) < 40).sum()
    assert near > 150, f"curve {name}: only {near} pixels of its colour {rgb} on the screenshot"
    assert f'class="curve" data-name="{name}"' in dom, f"curve {name} missing from the rendered DOM"
assert dom.count("data:image/png;base64,") >= 2, "sample grids missing"
print(f"ok 4: report.html rendered by Chromium: pixel std {shot.std():.0f}, all curves drawn, "
      f"{dom.count('data:image/png;base64,')} sample grids")
