"""`make demo`: de-identify the bundled sample and show where everything went.

The sample is scikit-image's public-domain ``astronaut`` photo (NASA, Eileen
Collins), written here as a JPEG carrying the kind of metadata a phone adds
(GPS position, camera, date) so the demo shows it being stripped.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from skimage import data

from facedeid.cli import main as cli_main

OUT = Path("demo_output")


def make_sample(path: Path) -> None:
    img = Image.fromarray(data.astronaut())
    exif = Image.Exif()
    exif[0x010F] = "DemoCam"            # Make
    exif[0x0110] = "DemoCam 1"          # Model
    exif[0x0132] = "2026:11:21 12:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (28.0, 31.0, 26.0)   # Kennedy Space Center
    gps[3], gps[4] = "W", (80.0, 39.0, 3.0)
    img.save(path, quality=95, exif=exif)


def main() -> int:
    OUT.mkdir(exist_ok=True)
    sample = OUT / "astronaut.jpg"
    make_sample(sample)
    print(f"sample:      {sample} (with GPS metadata)")
    out = OUT / "astronaut_anonymized.jpg"
    rc = cli_main(["anonymize", str(sample), "-o", str(out), "--json"])
    if rc:
        return rc
    rc = cli_main(["landmarks", str(sample), "-o", str(OUT / "astronaut_landmarks.png"),
                   "--json", str(OUT / "astronaut_landmarks.json")])
    print(f"output:      {out.resolve()}")
    print(f"audit JSON:  {out.resolve()}.json")
    print(f"landmarks:   {(OUT / 'astronaut_landmarks.png').resolve()}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
