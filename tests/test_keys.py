"""Reversible mode (facedeid.keys): round trips, wrong keys, tampering, per-face keys,
the strict payload parser (fuzzed), and secrets never leaking into output."""

from __future__ import annotations

import base64
import json
import os
import stat
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facedeid.cli import main
from facedeid.errors import FaceDeidError, InputError, OutputError
from facedeid.io.images import read_image, write_image
from facedeid.io.metadata import metadata_summary
from facedeid.keys import (
    FaceKey,
    KeyFileError,
    MasterKey,
    PayloadError,
    TamperError,
    WrongKeyError,
    generate_key_file,
    load_key,
    parse_payload,
    write_face_key,
)
from facedeid.keys.embed import (
    embed_jpeg,
    embed_png,
    extract,
    extract_jpeg,
    extract_png,
    sidecar_path,
)
from facedeid.keys.image import recover_image, write_reversible_image
from facedeid.keys.payload import IMAGE_UNIT, KIND_IMAGE, MAGIC
from facedeid.keys.pixels import ownership, pack_region, unpack_region
from facedeid.keys.seal import ZERO_DIGEST, Opener, Sealer
from facedeid.methods import METHODS
from facedeid.pipeline import Anonymizer
from facedeid.types import Face

FAST_SCRYPT = (10, 8, 1)       # tests only: the CLI uses N = 2**17


def key() -> MasterKey:
    return MasterKey.from_bytes(os.urandom(32))


def synthetic(h=96, w=128, channels=3, dtype=np.uint8, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    maxv = np.iinfo(dtype).max
    yy, xx = np.mgrid[:h, :w]
    base = (xx * maxv // w + yy * maxv // (2 * h)) % (maxv + 1)
    img = base[..., None] + rng.integers(0, maxv // 8, (h, w, channels))
    img = np.clip(img, 0, maxv).astype(dtype)
    return img[..., 0] if channels == 1 else img


TWO_FACES = [Face((10, 12, 50, 60), 0.9, face_id=0), Face((40, 20, 90, 70), 0.9, face_id=1)]


def reversible_png(tmp_path: Path, img: np.ndarray, k: MasterKey, *, faces=TWO_FACES, method="pixelate",
                   name="out.png", **anon_kw):
    src = tmp_path / ("src_" + name.rsplit(".", 1)[0] + ".png")
    write_image(src, img)
    loaded = read_image(src)
    result = Anonymizer(method, seed=1, **anon_kw).anonymize(loaded.pixels, faces=faces)
    written, info = write_reversible_image(tmp_path / name, result, loaded, k, protect=[src])
    return src, tmp_path / name, result, info


# ---------------------------------------------------------------- keys
def test_keygen_writes_32_random_bytes_mode_0600_and_never_overwrites(tmp_path, capsys):
    kf = tmp_path / "case.key"
    assert main(["keygen", "-o", str(kf)]) == 0
    data = kf.read_bytes()
    assert len(data) == 32 and stat.S_IMODE(kf.stat().st_mode) == 0o600
    assert isinstance(load_key(kf), MasterKey)
    assert main(["keygen", "-o", str(kf)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert kf.read_bytes() == data
    generate_key_file(tmp_path / "other.key")
    assert (tmp_path / "other.key").read_bytes() != data


def test_bad_key_files_are_clear_errors(tmp_path):
    (tmp_path / "short.key").write_bytes(b"x" * 31)
    with pytest.raises(KeyFileError, match="not a facedeid key file"):
        load_key(tmp_path / "short.key")
    with pytest.raises(KeyFileError, match="no such"):
        load_key(tmp_path / "missing.key")
    fk = FaceKey(payload_id=b"p" * 16, kind=KIND_IMAGE, unit=3, key=b"k" * 32)
    write_face_key(tmp_path / "face.key", fk)
    with pytest.raises(KeyFileError, match="face key"):
        MasterKey.from_key_file(tmp_path / "face.key")
    loaded = load_key(tmp_path / "face.key")
    assert isinstance(loaded, FaceKey) and loaded.unit == 3
    assert "k" * 8 not in repr(loaded) and "redacted" in repr(key())


# ---------------------------------------------------------------- packing
@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (3, np.uint8), (4, np.uint8),
                                            (3, np.uint16), (1, np.uint16), (4, np.uint16)])
def test_pack_unpack_is_lossless_for_every_layout(channels, dtype):
    crop = synthetic(37, 53, channels, dtype, seed=channels)
    rng = np.random.default_rng(1)
    owned = rng.random((37, 53)) < 0.7
    data = pack_region(crop, owned)
    assert len(data) % 256 == 0
    got_owned, pix = unpack_region(data, 37, 53, channels, 8 * np.dtype(dtype).itemsize)
    assert np.array_equal(got_owned, owned)
    assert np.array_equal(pix[owned], crop[owned])
    with pytest.raises(PayloadError):
        unpack_region(data, 37, 54, channels, 8 * np.dtype(dtype).itemsize)


def test_ownership_gives_each_pixel_to_the_last_face_painted():
    a = np.ones((10, 10), np.float32)
    b = np.zeros((10, 10), np.float32)
    b[2:, 2:] = 0.4                                # a feathered region counts as covered
    own_a, own_b = ownership([(a, (0, 0, 10, 10)), (b, (5, 5, 15, 15))], 20, 20)
    assert own_a.sum() + own_b.sum() == 100 + 64 - 9   # union of the two regions, no pixel twice
    assert not own_a[7:, 7:].any() and own_b[2:5, 2:5].all()


# ---------------------------------------------------------------- image round trips
@pytest.fixture(scope="module")
def face_crop(astronaut):
    """A 256 x 256 crop of the astronaut photo around its face, with the face found in it."""
    crop = np.ascontiguousarray(astronaut[:256, 96:352])
    anon = Anonymizer("blur")
    faces = anon.add_landmarks(crop, anon.detect(crop))
    assert len(faces) == 1 and faces[0].landmarks68 is not None
    return crop, faces


@pytest.mark.parametrize("method", METHODS.names())
def test_round_trip_every_method_and_format(method, face_crop, tmp_path):
    astronaut, astro_faces = face_crop
    src = tmp_path / "in.png"
    write_image(src, astronaut)
    loaded = read_image(src)
    try:
        result = Anonymizer(method, seed=3).anonymize(loaded.pixels, faces=astro_faces)
    except FaceDeidError as exc:            # the method itself cannot run here (its own tests say why)
        pytest.skip(f"method {method} does not run without reversible mode either: {exc}")
    assert not np.array_equal(result.image, astronaut), "the method changed nothing"
    k = key()
    for ext, exact, where in (("png", True, "PNG chunk"), ("tif", True, "sidecar"),
                              ("jpg", False, "JPEG APP15"), ("webp", False, "sidecar")):
        out = tmp_path / f"out.{ext}"
        written, info = write_reversible_image(out, result, loaded, k, protect=[src])
        assert info.where.startswith(where) and info.faces == [0]
        assert sidecar_path(out).exists() == (where == "sidecar")
        assert metadata_summary(out.read_bytes())["identifying"] == []
        pix, report = recover_image(out, k, dst=tmp_path / f"back_{ext}.png")
        assert report.recovered == [0] and report.locked == []
        back = read_image(tmp_path / f"back_{ext}.png").pixels
        assert np.array_equal(back, pix)
        if exact:
            assert report.exact == "pixel-exact" and report.verified
            assert np.array_equal(pix, astronaut)
        else:
            assert report.exact == "regions" and not report.verified
            x0, y0, x1, y1 = result.record["faces"][0]["region"]["bbox"]
            inner = (slice((3 * y0 + y1) // 4, (y0 + 3 * y1) // 4), slice((3 * x0 + x1) // 4, (x0 + 3 * x1) // 4))
            assert np.array_equal(pix[inner], astronaut[inner])   # exact inside the face
            assert not np.array_equal(read_image(out).pixels[inner], astronaut[inner])


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (4, np.uint8), (3, np.uint16), (1, np.uint16)])
def test_round_trip_gray_alpha_and_16_bit_pixel_exact(channels, dtype, tmp_path):
    img = synthetic(96, 128, channels, dtype)
    k = key()
    src, out, result, info = reversible_png(tmp_path, img, k, method="noise")
    pix, report = recover_image(out, k, dst=tmp_path / "back.png")
    assert report.exact == "pixel-exact" and np.array_equal(pix, img) and pix.dtype == img.dtype
    assert np.array_equal(read_image(tmp_path / "back.png").pixels, img)
    # JPEG holds neither 16 bits nor alpha: the faces still come back at the original depth
    loaded = read_image(src)
    write_reversible_image(tmp_path / "out.jpg", result, loaded, k)
    pix, report = recover_image(tmp_path / "out.jpg", k)
    assert report.exact == "regions" and pix.dtype == img.dtype and pix.shape == img.shape
    assert np.array_equal(pix[30:40, 55:70], img[30:40, 55:70])


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path):
    img = synthetic()
    k = MasterKey.from_passphrase("correct horse battery staple", scrypt=FAST_SCRYPT)
    src, out, _, _ = reversible_png(tmp_path, img, k)
    pix, report = recover_image(out, MasterKey.from_passphrase("correct horse battery staple"))
    assert np.array_equal(pix, img) and report.exact == "pixel-exact"
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        recover_image(out, MasterKey.from_passphrase("correct horse battery stapler"), dst=tmp_path / "x.png")
    with pytest.raises(WrongKeyError, match="passphrase, not a key file"):
        recover_image(out, key())
    assert not (tmp_path / "x.png").exists()


def test_wrong_key_is_refused_and_nothing_written(tmp_path):
    img = synthetic()
    src, out, _, _ = reversible_png(tmp_path, img, key())
    before = out.read_bytes()
    with pytest.raises(WrongKeyError, match="opens none of the 2 face"):
        recover_image(out, key(), dst=tmp_path / "back.png")
    assert not (tmp_path / "back.png").exists() and out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _png_payload_span(data: bytes) -> tuple[int, int]:
    pos = data.index(b"fdEK") - 4
    length = struct.unpack(">I", data[pos:pos + 4])[0]
    return pos + 8, pos + 8 + length


def _with_payload(data: bytes, payload: bytes) -> bytes:
    """A PNG whose fdEK chunk body is replaced (CRC recomputed: an attacker's edit)."""
    s, e = _png_payload_span(data)
    chunk = struct.pack(">I", len(payload)) + b"fdEK" + payload + struct.pack(">I", zlib.crc32(b"fdEK" + payload))
    return data[:s - 8] + chunk + data[e + 4:]


def test_tampering_is_detected_and_nothing_written(tmp_path):
    img = synthetic()
    k = key()
    src, out, result, _ = reversible_png(tmp_path, img, k)
    data = out.read_bytes()
    s, e = _png_payload_span(data)
    payload = data[s:e]
    parsed = parse_payload(payload)
    entry = parsed.entries[0]
    ct_at = payload.index(bytes(entry.ciphertext[:32]))
    cases = {
        "header bit": len(MAGIC) + 4,                # inside the method name
        "ciphertext bit": ct_at + 10,
        "trailer bit": len(payload) - 40,            # the master tag
        "digest bit": payload.index(entry.digest) + 3,
    }
    for what, pos in cases.items():
        bad = bytearray(payload)
        bad[pos] ^= 0x04
        victim = tmp_path / f"tampered_{what.split()[0]}.png"
        victim.write_bytes(_with_payload(data, bytes(bad)))
        with pytest.raises((TamperError, WrongKeyError, PayloadError)) as info:
            recover_image(victim, k, dst=tmp_path / "back.png")
        assert str(victim) in str(info.value), what
        assert not (tmp_path / "back.png").exists(), what
    # a flipped bit the PNG checksum catches is refused by the reader already
    raw = bytearray(data)
    raw[s + 100] ^= 1
    (tmp_path / "crc.png").write_bytes(bytes(raw))
    with pytest.raises(InputError, match="checksum"):
        recover_image(tmp_path / "crc.png", k)
    # the ciphertext flip specifically fails authentication
    bad = bytearray(payload)
    bad[ct_at + 10] ^= 1
    (tmp_path / "ct.png").write_bytes(_with_payload(data, bytes(bad)))
    with pytest.raises(TamperError, match="face 0: the payload was modified"):
        recover_image(tmp_path / "ct.png", k)
    # one bit in the painted region
    painted = read_image(out).pixels.copy()
    x0, y0, x1, y1 = result.record["faces"][1]["region"]["bbox"]
    painted[(y0 + y1) // 2, (x0 + x1) // 2, 0] ^= 1
    write_image(tmp_path / "region.png", painted)
    (tmp_path / "region.png").write_bytes(embed_png((tmp_path / "region.png").read_bytes(), payload))
    with pytest.raises(TamperError, match="face 1: the de-identified region was modified"):
        recover_image(tmp_path / "region.png", k, dst=tmp_path / "back.png")
    assert not (tmp_path / "back.png").exists()
    # the other face's region is untouched: it can still be recovered alone
    pix, report = recover_image(tmp_path / "region.png", k, faces=[0])
    assert report.recovered == [0] and report.locked == [1]


def test_truncated_payload_is_refused_at_every_length(tmp_path):
    img = synthetic(40, 48)
    k = key()
    _, out, _, _ = reversible_png(tmp_path, img, k, faces=[Face((5, 5, 30, 35), 0.9, face_id=0)])
    data = out.read_bytes()
    s, e = _png_payload_span(data)
    payload = data[s:e]
    for n in range(0, len(payload), 7):
        with pytest.raises(PayloadError):
            parse_payload(payload[:n])
    victim = tmp_path / "cut.png"
    victim.write_bytes(_with_payload(data, payload[:len(payload) // 2]))
    with pytest.raises(PayloadError, match="truncated"):
        recover_image(victim, k, dst=tmp_path / "back.png")
    assert not (tmp_path / "back.png").exists()


def test_payload_from_another_image_is_refused(tmp_path):
    k = key()
    _, a, _, _ = reversible_png(tmp_path, synthetic(seed=1), k, name="a.png")
    _, b, _, _ = reversible_png(tmp_path, synthetic(seed=2), k, name="b.png")
    pa = extract_png(a.read_bytes())
    moved = tmp_path / "b_with_a.png"
    moved.write_bytes(_with_payload(b.read_bytes(), pa))
    with pytest.raises(TamperError, match="another image"):
        recover_image(moved, k, dst=tmp_path / "back.png")
    # a sidecar copied next to another image
    src = tmp_path / "c_src.png"
    write_image(src, synthetic(seed=3))
    loaded = read_image(src)
    res = Anonymizer("blur", seed=0).anonymize(loaded.pixels, faces=TWO_FACES)
    write_reversible_image(tmp_path / "c.webp", res, loaded, k)
    write_image(tmp_path / "d.webp", synthetic(seed=4))
    sidecar_path(tmp_path / "d.webp").write_bytes(sidecar_path(tmp_path / "c.webp").read_bytes())
    with pytest.raises(TamperError, match="another image"):
        recover_image(tmp_path / "d.webp", k, dst=tmp_path / "back.png")
    small = tmp_path / "small.png"                   # another size: refused before any key work
    write_image(small, synthetic(50, 60))
    with pytest.raises(TamperError, match="another image"):
        recover_image(small, k, payload_path=sidecar_path(tmp_path / "c.webp"))
    assert not (tmp_path / "back.png").exists()


def test_no_payload_is_a_clear_error(tmp_path):
    write_image(tmp_path / "plain.png", synthetic())
    with pytest.raises(PayloadError, match="no facedeid payload found"):
        recover_image(tmp_path / "plain.png", key())


def test_face_key_opens_its_own_face_and_no_other(tmp_path, capsys):
    img = synthetic()
    kf = tmp_path / "master.key"
    generate_key_file(kf)
    master = MasterKey.from_key_file(kf)
    _, out, result, _ = reversible_png(tmp_path, img, master)
    fk = tmp_path / "face1.key"
    assert main(["keygen", "--derive", str(out), "--face", "1", "--key-file", str(kf), "-o", str(fk)]) == 0
    assert stat.S_IMODE(fk.stat().st_mode) == 0o600
    face_key = load_key(fk)
    assert isinstance(face_key, FaceKey) and face_key.unit == 1
    pix, report = recover_image(out, face_key, dst=tmp_path / "one.png")
    assert report.recovered == [1] and report.locked == [0] and report.exact == "regions"
    own = ownership_of(result, img.shape)
    assert np.array_equal(pix[own[1]], img[own[1]])           # face 1 restored exactly
    painted = read_image(out).pixels
    assert np.array_equal(pix[own[0]], painted[own[0]])       # face 0 (and the overlap it lost) stays
    assert not np.array_equal(pix[own[0]], img[own[0]])
    with pytest.raises(WrongKeyError, match="does not open face 0"):
        recover_image(out, face_key, faces=[0])
    # a face key of another image opens nothing here
    _, other, _, _ = reversible_png(tmp_path, synthetic(seed=9), master, name="other.png")
    with pytest.raises(WrongKeyError, match="another image"):
        recover_image(other, face_key)
    assert main(["keygen", "--derive", str(out), "--face", "7", "--key-file", str(kf),
                 "-o", str(tmp_path / "nope.key")]) == 2
    assert "no face 7" in capsys.readouterr().err and not (tmp_path / "nope.key").exists()


def ownership_of(result, shape):
    from facedeid.keys.image import face_regions

    h, w = shape[:2]
    regions = face_regions(result.record["faces"], result.faces, h, w)
    owned = ownership([(m, b) for _, m, b in regions], h, w)
    full = []
    for (unit, _, (x0, y0, x1, y1)), own in zip(regions, owned):
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = own
        full.append(m)
    return full


def test_a_method_painting_outside_every_region_is_refused(tmp_path):
    img = synthetic()
    src = tmp_path / "in.png"
    write_image(src, img)
    loaded = read_image(src)
    result = Anonymizer("blur", seed=0).anonymize(loaded.pixels, faces=TWO_FACES)
    result.image[90, 120] ^= 0xFF                    # a change no face region explains
    with pytest.raises(RuntimeError, match="outside every face"):
        write_reversible_image(tmp_path / "out.png", result, loaded, key())
    assert not (tmp_path / "out.png").exists()


def test_keep_metadata_does_not_matter_and_stale_sidecar_removed(tmp_path):
    img = synthetic()
    k = key()
    src = tmp_path / "in.png"
    write_image(src, img)
    loaded = read_image(src)
    result = Anonymizer("blur", seed=0).anonymize(loaded.pixels, faces=TWO_FACES)
    sidecar_path(tmp_path / "out.jpg").write_bytes(MAGIC + b"old")
    for keep in (False, True):
        written, info = write_reversible_image(tmp_path / "out.jpg", result, loaded, k, keep_metadata=keep)
        assert "deid-payload" in written.metadata["found"] and written.metadata["identifying"] == []
        assert extract_jpeg((tmp_path / "out.jpg").read_bytes()) is not None
        assert recover_image(tmp_path / "out.jpg", k)[1].recovered == [0, 1]
    assert not sidecar_path(tmp_path / "out.jpg").exists()


# ---------------------------------------------------------------- embedding
def test_jpeg_payload_split_over_many_segments(tmp_path):
    write_image(tmp_path / "x.jpg", synthetic())
    data = (tmp_path / "x.jpg").read_bytes()
    payload = os.urandom(200_000)
    out = embed_jpeg(data, payload)
    assert extract_jpeg(out) == payload and out.count(b"FACEDEID\x00") == 4
    (tmp_path / "y.jpg").write_bytes(out)
    assert read_image(tmp_path / "y.jpg").pixels.shape == (96, 128, 3)   # still a valid JPEG
    seg = out.index(b"FACEDEID\x00", out.index(b"FACEDEID\x00") + 1)
    broken = out[:seg + 9] + b"\x00\x05" + out[seg + 11:]              # second segment claims seq 5
    with pytest.raises(PayloadError, match="out of order"):
        extract_jpeg(broken)


# ---------------------------------------------------------------- the parser, fuzzed
def _small_payload() -> tuple[bytes, MasterKey]:
    k = key()
    s = Sealer(k, kind=KIND_IMAGE, method="blur", width=16, height=12, channels=3, bits=8)
    crop = synthetic(6, 7, 3)
    s.add(0, 0, (1, 2, 8, 8), b"d" * 32, pack_region(crop, np.ones((6, 7), bool)))
    s.add(4, 0, (8, 4, 16, 12), b"e" * 32, pack_region(synthetic(8, 8, 3), np.ones((8, 8), bool)))
    s.add(IMAGE_UNIT, 0, (0, 0, 16, 12), ZERO_DIGEST, b"x" * 32)
    return s.finish(), k


VALID, VALID_KEY = _small_payload()


def _parse_checked(data: bytes) -> None:
    """Only PayloadError may come out, memory stays bounded."""
    tracemalloc.start()
    try:
        try:
            p = parse_payload(data)
        except PayloadError:
            p = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(data) + 256 * 1024
    if p is not None:
        try:
            opener = Opener(p, VALID_KEY, "fuzz")
            for e in p.entries:
                opener.open(e)
        except (TamperError, WrongKeyError):
            return
        assert data == VALID, "a modified payload opened without complaint"
    for fn in (extract_png, extract_jpeg, extract):
        try:
            fn(data)
        except PayloadError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    _parse_checked(data)
    _parse_checked(MAGIC + b"\x01" + data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255),
                          st.sampled_from(["set", "insert", "delete"])), min_size=1, max_size=4))
def test_fuzz_mutated_valid_payload(edits):
    data = bytearray(VALID)
    for pos, value, op in edits:
        pos = min(pos, len(data) - 1)
        if op == "set":
            data[pos] = value
        elif op == "insert":
            data.insert(pos, value)
        elif len(data) > 1:
            del data[pos]
    _parse_checked(bytes(data))


def test_parser_refuses_huge_claimed_lengths_without_allocating():
    head = parse_payload(VALID).header_bytes
    entry = b"E" + struct.pack(">IIIIII", 0, 0, 0, 0, 16, 12) + b"d" * 32 + b"n" * 12 + struct.pack(">I", 0xFFFFFFF0)
    for data in (head + entry, head + b"T" + struct.pack(">I", 0xFFFFFFFF)):
        tracemalloc.start()
        with pytest.raises(PayloadError):
            parse_payload(data)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 100_000
    from facedeid.keys.payload import Header, ScryptParams

    hdr = parse_payload(VALID).header
    for log2_n, r, p in ((64, 8, 1), (20, 32, 16), (9, 8, 1), (17, 0, 1)):   # absurd or weak KDF costs
        costly = Header(kind=hdr.kind, method=hdr.method, payload_id=hdr.payload_id, width=16,
                        height=12, channels=3, bits=8, kdf=ScryptParams(log2_n, r, p, b"s" * 16))
        with pytest.raises(PayloadError, match="scrypt"):
            parse_payload(costly.to_bytes() + VALID[len(head):])


# ---------------------------------------------------------------- CLI and secrets
def test_cli_round_trip_and_secrets_never_printed(astronaut, tmp_path, capsys, monkeypatch, caplog):
    from PIL import Image

    caplog.set_level("DEBUG")                       # every log line, of every library
    Image.fromarray(astronaut).save(tmp_path / "in.jpg", quality=95)
    kf = tmp_path / "k.key"
    assert main(["keygen", "-o", str(kf)]) == 0
    raw = kf.read_bytes()
    secret = "Zebra-Quartz-Passphrase-4711"
    (tmp_path / "pw.txt").write_text(secret + "\n")
    monkeypatch.setenv("FACEDEID_TEST_PW", secret)
    outs = tmp_path / "out"
    runs = [
        ["-v", "anonymize", str(tmp_path / "in.jpg"), "-o", str(outs / "a.png"), "--json", "--reversible",
         "--key-file", str(kf), "--method", "pixelate"],
        ["anonymize", str(tmp_path / "in.jpg"), "-o", str(outs / "b.jpg"), "--json", "--reversible",
         "--passphrase-file", str(tmp_path / "pw.txt")],
        ["recover", str(outs / "a.png"), "--key-file", str(kf), "-o", str(outs / "a_back.png"), "--json"],
        ["-v", "recover", str(outs / "b.jpg"), "--passphrase-env", "FACEDEID_TEST_PW", "--json"],
        ["recover", str(outs / "a.png"), "--list"],
        ["recover", str(outs / "a.png"), "--passphrase-file", str(tmp_path / "pw.txt"),
         "-o", str(outs / "nope.png")],
        ["recover", str(outs / "b.jpg"), "--key-file", str(kf), "-o", str(outs / "nope2.png")],
    ]
    codes = []
    text = ""
    for argv in runs:
        codes.append(main(argv))
        c = capsys.readouterr()
        text += c.out + c.err
    assert codes == [0, 0, 0, 0, 0, 2, 2]
    assert "pixel-exact" in text and "method pixelate" in text
    assert "written with a key file, not a passphrase" in text
    assert "written with a passphrase, not a key file" in text
    assert not (outs / "nope.png").exists() and not (outs / "nope2.png").exists()
    back = read_image(outs / "a_back.png").pixels
    assert np.array_equal(back, read_image(tmp_path / "in.jpg").pixels)
    jpg_result = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {r["exact"] for r in jpg_result} == {"pixel-exact", "regions"}
    record = json.loads((outs / "a.png.json").read_text())
    assert record["metadata"]["output_identifying"] == []
    assert any(n.startswith("reversible:") for n in record["notes"])
    corpus = text + caplog.text + "".join(p.read_text(errors="replace") for p in outs.glob("*.json"))
    for needle in (secret, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(),
                   base64.b64encode(secret.encode()).decode(), secret.encode().hex()):
        assert needle not in corpus
    for p in outs.iterdir():                        # nor in any file written (payloads included)
        blob = p.read_bytes()
        assert raw not in blob and secret.encode() not in blob


def test_cli_usage_errors(tmp_path, capsys):
    img = tmp_path / "in.png"
    write_image(img, synthetic())
    kf = tmp_path / "k.key"
    generate_key_file(kf)
    assert main(["anonymize", str(img), "--key-file", str(kf)]) == 2
    assert "only used with --reversible" in capsys.readouterr().err
    assert main(["anonymize", str(img), "--reversible"]) == 2
    assert "needs exactly one of" in capsys.readouterr().err
    (tmp_path / "pw").write_text("x\n")
    assert main(["anonymize", str(img), "--reversible", "--key-file", str(kf),
                 "--passphrase-file", str(tmp_path / "pw")]) == 2
    assert main(["recover", str(img), "--key-file", str(kf)]) == 2
    assert "no facedeid payload" in capsys.readouterr().err
    src, out, _, _ = reversible_png(tmp_path, synthetic(), MasterKey.from_key_file(kf))
    with pytest.raises(OutputError, match="losslessly"):
        recover_image(out, MasterKey.from_key_file(kf), dst=tmp_path / "back.jpg")
    assert main(["recover", str(out), "--key-file", str(kf), "-o", str(out)]) == 2
    assert "overwrite" in capsys.readouterr().err
