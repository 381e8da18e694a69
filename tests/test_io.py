"""Image I/O: orientation, pixel formats, metadata stripping, bad input, outputs,
atomic writes and path planning. Every fixture file is made here in tmp_path."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from facedeid.errors import InputError, OutputError
from facedeid.io import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    atomic_output,
    expand_inputs,
    media_kind,
    metadata_summary,
    plan_outputs,
    read_image,
    write_image,
)
from facedeid.io.atomic import atomic_write_bytes
from facedeid.io.images import DEFAULT_MAX_PIXELS, apply_orientation, flatten_alpha, to_8bit
from facedeid.io.metadata import SAFE_EXIF_TAGS, SAFE_IFD0_TAGS, tag_name

# --------------------------------------------------------------------------
# fixture builders

TL, TR, BL, BG = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def displayed_image(h: int = 40, w: int = 64) -> np.ndarray:
    """The picture as it should be displayed: coloured blocks at three corners."""
    img = np.full((h, w, 3), BG, np.uint8)
    img[:12, :12] = TL
    img[:12, -12:] = TR
    img[-12:, :12] = BL
    return img


# stored = STORE[o](displayed): the inverse of what the EXIF value asks viewers to do
STORE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,   # viewer turns it 90 deg clockwise back
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,  # viewer turns it 90 deg counter-clockwise back
}


def stored_for(display: np.ndarray, orientation: int) -> Image.Image:
    im = Image.fromarray(display)
    op = STORE[orientation]
    return im if op is None else im.transpose(op)


def corner_colours(px: np.ndarray) -> tuple:
    return tuple(tuple(int(v) for v in px[y, x][:3]) for y, x in ((5, 5), (5, -6), (-6, 5), (-6, -6)))


def near(a, b, tol=12) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def tiff_blob(ifds: dict[str, list], thumb: bytes = b"", endian: str = "<") -> bytes:
    """A TIFF/EXIF structure. ``ifds``: name -> [(tag, type, value)], names from
    ifd0 exif gps ifd1 (in that layout order). Values: bytes (ASCII/UNDEFINED),
    a list of ints, a list of (num, den), or "@exif"/"@gps"/"@thumb" pointers."""
    order = [n for n in ("ifd0", "exif", "gps", "ifd1") if n in ifds]
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 1: 1}

    def payload(typ, value, offsets):
        if isinstance(value, str):
            return struct.pack(endian + "I", offsets[value[1:]])
        if isinstance(value, bytes):
            return value
        if typ == 5:
            return b"".join(struct.pack(endian + "II", n, d) for n, d in value)
        fmt = {1: "B", 3: "H", 4: "I"}[typ]
        return struct.pack(endian + f"{len(value)}{fmt}", *value)

    def count(typ, value):
        if isinstance(value, str):
            return 1
        if isinstance(value, bytes):
            return len(value)
        return len(value)

    def layout(offsets):
        out = bytearray((b"II*\x00" if endian == "<" else b"MM\x00*") + struct.pack(endian + "I", 8))
        for i, name in enumerate(order):
            entries = sorted(ifds[name])
            start = len(out)
            offsets[name] = start
            data_off = start + 2 + 12 * len(entries) + 4
            body = bytearray()
            table = bytearray(struct.pack(endian + "H", len(entries)))
            for tag, typ, value in entries:
                p = payload(typ, value, offsets)
                if len(p) <= 4:
                    field = p.ljust(4, b"\x00")
                else:
                    field = struct.pack(endian + "I", data_off + len(body))
                    body += p + (b"\x00" if len(p) % 2 else b"")
                table += struct.pack(endian + "HHI", tag, typ, count(typ, value)) + field
            nxt = 0
            if name == "ifd0" and "ifd1" in ifds:
                nxt = offsets.get("ifd1", 0)
            table += struct.pack(endian + "I", nxt)
            out += table + body
        offsets["thumb"] = len(out)
        out += thumb
        return bytes(out)

    offsets = {"exif": 0, "gps": 0, "ifd1": 0, "thumb": 0}
    layout(offsets)  # first pass: offsets
    return layout(offsets)


def thumbnail_jpeg() -> bytes:
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def full_exif(orientation: int = 6, thumb: bytes | None = None, endian: str = "<") -> bytes:
    thumb = thumbnail_jpeg() if thumb is None else thumb
    ifds = {
        "ifd0": [
            (271, 2, b"SecretCam\x00"), (272, 2, b"X100\x00"), (274, 3, [orientation]),
            (306, 2, b"2020:01:02 03:04:05\x00"), (315, 2, b"Jane Doe\x00"),
            (33432, 2, b"(c) Jane Doe\x00"), (34665, 4, "@exif"), (34853, 4, "@gps"),
        ],
        "exif": [
            (33434, 5, [(1, 125)]), (33437, 5, [(28, 10)]), (34855, 3, [400]),
            (36867, 2, b"2020:01:02 03:04:05\x00"), (37386, 5, [(50, 1)]),
            (37500, 7, b"SECRETMAKERNOTE" * 4), (37510, 7, b"ASCII\x00\x00\x00Jane at home"),
            (42033, 2, b"SN123456789\x00"), (42036, 2, b"50mm F1.8\x00"),
        ],
        "gps": [
            (0, 1, [2, 3, 0, 0]), (1, 2, b"N\x00"), (2, 5, [(48, 1), (51, 1), (2997, 100)]),
            (3, 2, b"E\x00"), (4, 5, [(2, 1), (17, 1), (4012, 100)]),
        ],
        "ifd1": [(259, 3, [6]), (513, 4, "@thumb"), (514, 4, [len(thumb)])],
    }
    return b"Exif\x00\x00" + tiff_blob(ifds, thumb, endian)


def jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:creator>Jane Doe</dc:creator>'
       b"</rdf:RDF></x:xmpmeta>")


def iptc_app13() -> bytes:
    iptc = b"\x1c\x02\x50" + struct.pack(">H", 8) + b"Jane Doe"  # 2:80 By-line
    res = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return b"Photoshop 3.0\x00" + res


def loaded_jpeg(display: np.ndarray, orientation: int, extra_segments: bool = True, exif: bytes | None = None,
                icc: bytes | None = None) -> bytes:
    """A camera-like JPEG: stored pixels + EXIF (GPS, thumbnail, MakerNote ...), XMP, IPTC, COM."""
    buf = io.BytesIO()
    kw = {"icc_profile": icc} if icc else {}
    stored_for(display, orientation).save(buf, "JPEG", quality=95, subsampling=0, **kw)
    data = buf.getvalue()
    segs = jpeg_segment(0xE1, exif if exif is not None else full_exif(orientation))
    if extra_segments:
        segs += jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP)
        segs += jpeg_segment(0xED, iptc_app13())
        segs += jpeg_segment(0xFE, b"Jane Doe's birthday party")
    return data[:2] + segs + data[2:]


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def insert_chunks(png: bytes, chunks: bytes) -> bytes:
    end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:end] + chunks + png[end:]


def png_chunk_types(data: bytes) -> list[bytes]:
    """Chunk types by walking the bytes (independent of facedeid's parser)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        out.append(data[pos + 4:pos + 8])
        pos += 12 + n
    return out


def jpeg_markers(data: bytes) -> list[int]:
    """Markers before SOS (independent of facedeid's parser)."""
    pos, out = 2, []
    while pos < len(data):
        assert data[pos] == 0xFF
        m = data[pos + 1]
        out.append(m)
        if m == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return out


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --------------------------------------------------------------------------
# orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_png_exact(tmp_path, orientation):
    disp = displayed_image()
    stored = stored_for(disp, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    stored.save(p, exif=exif.tobytes())
    img = read_image(p)
    assert img.orientation == orientation
    assert img.pixels.shape == disp.shape
    np.testing.assert_array_equal(img.pixels, disp)
    # Pillow's own exif_transpose agrees
    np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(Image.open(p))), disp)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_jpeg_markers(tmp_path, orientation):
    disp = displayed_image()
    p = tmp_path / f"o{orientation}.jpg"
    p.write_bytes(loaded_jpeg(disp, orientation))
    img = read_image(p)
    assert img.orientation == orientation
    assert img.pixels.shape == disp.shape
    got = corner_colours(img.pixels)
    want = (TL, TR, BL, BG)
    assert all(near(g, w) for g, w in zip(got, want)), (orientation, got)


def test_orientation_written_as_1(tmp_path):
    p = tmp_path / "o6.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 6))
    img = read_image(p)
    for keep in (False, True):
        out = tmp_path / f"out_{keep}.jpg"
        write_image(out, img.pixels, like=img, keep_metadata=keep)
        back = read_image(out)
        assert back.orientation == 1
        assert back.pixels.shape == img.pixels.shape
        assert Image.open(out).getexif().get(0x0112, 1) == 1
        assert all(near(g, w) for g, w in zip(corner_colours(back.pixels), (TL, TR, BL, BG)))


def test_orientation_tiff_tag(tmp_path):
    disp = displayed_image()
    p = tmp_path / "o8.tif"
    stored_for(disp, 8).save(p, tiffinfo={274: 8})
    img = read_image(p)
    assert img.orientation == 8
    np.testing.assert_array_equal(img.pixels, disp)


@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_orientation_16bit_tiff(tmp_path, orientation):
    from facedeid.io.images import encode_tiff16

    disp = displayed_image().astype(np.uint16) * 257
    stored = np.asarray(stored_for(displayed_image(), orientation)).astype(np.uint16) * 257
    p = tmp_path / "o16.tif"
    p.write_bytes(encode_tiff16(stored, orientation=orientation))
    img = read_image(p)
    assert img.orientation == orientation and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, disp)


def test_apply_orientation_any_dtype_and_invalid_value():
    a = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    assert apply_orientation(a, 6).shape == (3, 2, 4)
    assert apply_orientation(a, 0) is a and apply_orientation(a, 9) is a
    g = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(apply_orientation(g, 3), g[::-1, ::-1])


def test_invalid_orientation_value_is_ignored(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 42
    p = tmp_path / "bad_orient.png"
    Image.fromarray(displayed_image()).save(p, exif=exif.tobytes())
    img = read_image(p)
    assert img.orientation == 1
    np.testing.assert_array_equal(img.pixels, displayed_image())


# --------------------------------------------------------------------------
# pixel formats


def test_rgba_png_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    p = tmp_path / "rgba.png"
    Image.fromarray(a, "RGBA").save(p)
    img = read_image(p)
    assert img.has_alpha and img.pixels.dtype == np.uint8
    np.testing.assert_array_equal(img.pixels, a)
    out = tmp_path / "rgba_out.png"
    w = write_image(out, img.pixels, like=img)
    assert w.mode == "RGBA"
    np.testing.assert_array_equal(read_image(out).pixels, a)
    # WebP keeps alpha too (lossless when asked)
    outw = tmp_path / "rgba_out.webp"
    write_image(outw, img.pixels, like=img, lossless=True)
    np.testing.assert_array_equal(read_image(outw).pixels[..., 3], a[..., 3])


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 3), (20, 30, 4)])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_roundtrip_exact(tmp_path, shape, ext):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 65536, shape, dtype=np.uint16)
    p = tmp_path / f"in{ext}"
    w = write_image(p, a)
    assert w.mode.endswith(";16")
    img = read_image(p)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, a)
    out = tmp_path / f"out{ext}"
    write_image(out, img.pixels, like=img)
    np.testing.assert_array_equal(read_image(out).pixels, a)
    with Image.open(out) as im:  # a standard file: Pillow decodes it too
        im.load()


def test_16bit_png_from_other_writer(tmp_path):
    """16-bit RGB written by OpenCV (not facedeid) is read at full depth."""
    import cv2

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    p = tmp_path / "cv16.png"
    cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    img = read_image(p)
    np.testing.assert_array_equal(img.pixels, rgb)
    # with an eXIf orientation (OpenCV ignores it for PNG; facedeid applies it)
    from facedeid.io.metadata import png_insert_chunks, png_metadata_chunks

    exif = Image.Exif()
    exif[0x0112] = 6
    p.write_bytes(png_insert_chunks(p.read_bytes(), png_metadata_chunks(exif=exif.tobytes())))
    img = read_image(p)
    assert img.orientation == 6 and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, apply_orientation(rgb, 6))


def test_16bit_gray_alpha_png(tmp_path):
    rng = np.random.default_rng(5)
    ga = rng.integers(0, 65536, (5, 7, 2), dtype=np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in ga)
    ihdr = struct.pack(">IIBBBBB", 7, 5, 16, 4, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))
    (tmp_path / "ga16.png").write_bytes(data)
    img = read_image(tmp_path / "ga16.png")
    assert img.pixels.dtype == np.uint16 and img.pixels.shape == (5, 7, 4)
    np.testing.assert_array_equal(img.pixels[..., 0], ga[..., 0])
    np.testing.assert_array_equal(img.pixels[..., 3], ga[..., 1])


def test_16bit_to_8bit_formats_round(tmp_path):
    a = np.array([[0, 128, 257, 65535, 32896]], dtype=np.uint16)
    np.testing.assert_array_equal(to_8bit(a), [[0, 0, 1, 255, 128]])
    w = write_image(tmp_path / "g.bmp", a)
    assert w.mode == "L" and any("8 bits" in n for n in w.notes)
    np.testing.assert_array_equal(read_image(tmp_path / "g.bmp").pixels, to_8bit(a))


def test_grayscale_jpeg_roundtrip(tmp_path):
    g = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))
    p = tmp_path / "gray.jpg"
    Image.fromarray(g, "L").save(p, quality=95)
    img = read_image(p)
    assert img.is_gray and img.pixels.shape == (32, 64)
    out = tmp_path / "gray_out.jpg"
    w = write_image(out, img.pixels, like=img)
    assert w.mode == "L"
    with Image.open(out) as im:
        assert im.mode == "L"
    assert np.abs(read_image(out).pixels.astype(int) - g).max() <= 3


def test_gray_alpha_png_written_back_as_gray_alpha(tmp_path):
    la = np.zeros((8, 9, 2), np.uint8)
    la[..., 0] = np.arange(9) * 20
    la[..., 1] = 200
    p = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(p)
    img = read_image(p)
    assert img.pixels.shape == (8, 9, 4) and img.mode == "LA"
    w = write_image(tmp_path / "la_out.png", img.pixels, like=img)
    assert w.mode == "LA"
    with Image.open(tmp_path / "la_out.png") as im:
        assert im.mode == "LA"
        np.testing.assert_array_equal(np.asarray(im), la)


def test_palette_with_transparency_becomes_rgba(tmp_path):
    pal = Image.new("P", (10, 6))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    px = np.zeros((6, 10), np.uint8)
    px[:, 5:] = 1
    pal.frombytes(px.tobytes())
    for ext in (".png", ".gif"):
        p = tmp_path / f"pal{ext}"
        pal.save(p, transparency=0)
        img = read_image(p)
        assert img.pixels.shape == (6, 10, 4), ext
        assert img.pixels[0, 0, 3] == 0 and img.pixels[0, 9, 3] == 255
        assert tuple(img.pixels[0, 9, :3]) == (0, 255, 0)
    p = tmp_path / "pal_opaque.png"
    pal.save(p)
    img = read_image(p)
    assert img.pixels.shape == (6, 10, 3)
    assert tuple(img.pixels[0, 0]) == (255, 0, 0)


def test_bilevel_and_cmyk(tmp_path):
    Image.new("1", (5, 4), 1).save(tmp_path / "b.png")
    img = read_image(tmp_path / "b.png")
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (4, 5) and img.pixels.max() == 255
    Image.new("CMYK", (6, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (4, 6, 3) and img.icc_profile is None
    assert near(img.pixels[0, 0], (255, 0, 0), tol=20)


def test_alpha_to_jpeg_flattens_onto_white(tmp_path):
    a = np.zeros((32, 48, 4), np.uint8)
    a[..., 0] = 255          # red everywhere
    a[:, :16, 3] = 0         # transparent third -> white
    a[:, 16:32, 3] = 255     # opaque third -> red
    a[:, 32:, 3] = 128       # half -> pink
    w = write_image(tmp_path / "flat.jpg", a)
    assert any("alpha flattened" in n for n in w.notes)
    px = read_image(tmp_path / "flat.jpg").pixels
    assert px.shape == (32, 48, 3)
    assert near(px[16, 8], (255, 255, 255), 6)
    assert near(px[16, 24], (255, 0, 0), 6)
    assert near(px[16, 40], (255, 127, 127), 6)
    np.testing.assert_array_equal(flatten_alpha(a[:1, ::16], (0, 0, 0))[0], [[0, 0, 0], [255, 0, 0], [128, 0, 0]])
    with pytest.raises(OutputError, match="transparency"):
        write_image(tmp_path / "refused.jpg", a, background=None)
    assert not (tmp_path / "refused.jpg").exists()
    opaque = a.copy()
    opaque[..., 3] = 255
    w = write_image(tmp_path / "opaque.jpg", opaque, background=None)
    assert w.notes == [] and w.mode == "RGB"


def test_format_from_extension_and_fallback(tmp_path):
    a = displayed_image()
    Image.fromarray(a).save(tmp_path / "x.webp", lossless=True)
    img = read_image(tmp_path / "x.webp")
    assert img.format == "WEBP" and img.lossless is True
    w = write_image(tmp_path / "noext", a, like=img)
    assert w.format == "WEBP"
    np.testing.assert_array_equal(read_image(tmp_path / "noext").pixels, a)  # lossless kept
    assert write_image(tmp_path / "y.JPEG", a).format == "JPEG"
    assert write_image(tmp_path / "y.tiff", a).format == "TIFF"
    with pytest.raises(OutputError, match="extension"):
        write_image(tmp_path / "z.xyz", a)
    with pytest.raises(OutputError, match="GIF"):
        write_image(tmp_path / "z.gif", a)
    with pytest.raises(ValueError):
        write_image(tmp_path / "f.png", a.astype(np.float32))


def test_jpeg_quality_default_and_no_subsampling(tmp_path):
    from PIL import JpegImagePlugin

    a = displayed_image()
    write_image(tmp_path / "q.jpg", a)
    with Image.open(tmp_path / "q.jpg") as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
        q95 = im.quantization
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=95, subsampling=0)
    assert Image.open(buf).quantization == q95


def test_multiframe_reads_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "multi.tif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "multi.tif")
    assert img.n_frames == 2 and tuple(img.pixels[0, 0]) == (255, 0, 0)
    assert any("2 frames" in n for n in img.notes)


# --------------------------------------------------------------------------
# metadata


def test_jpeg_metadata_fixture_is_detected(tmp_path):
    p = tmp_path / "camera.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 6))
    s = metadata_summary(p)
    assert s["format"] == "JPEG"
    for kind in ("exif", "gps", "thumbnail", "makernote", "xmp", "iptc", "comment"):
        assert kind in s["identifying"], kind
    assert s["thumbnail_bytes"] == len(thumbnail_jpeg())
    assert {"Artist", "BodySerialNumber", "DateTimeOriginal", "Make"} <= set(s["exif_tags"])
    assert "GPSLatitude" in s["gps_tags"] and s["orientation"] == 6
    # Pillow sees the same EXIF (the fixture is well-formed)
    ex = Image.open(p).getexif()
    assert ex[0x0112] == 6 and ex[0x013B] == "Jane Doe"


@pytest.mark.parametrize("endian", ["<", ">"])
def test_jpeg_strip_removes_everything(tmp_path, endian):
    thumb = thumbnail_jpeg()
    p = tmp_path / "camera.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 6, exif=full_exif(6, thumb, endian)))
    img = read_image(p)
    out = tmp_path / "camera_anonymized.jpg"
    w = write_image(out, img.pixels, like=img)
    data = out.read_bytes()
    # by bytes, independently of facedeid's parser
    for secret in (b"Jane Doe", b"SecretCam", b"SN123456789", b"SECRETMAKERNOTE", b"Exif\x00", b"xmpmeta",
                   b"8BIM", b"2020:01:02", thumb[2:200]):
        assert secret not in data, secret
    markers = jpeg_markers(data)
    assert 0xFE not in markers and 0xED not in markers and 0xE1 not in markers
    assert [m for m in markers if 0xE0 <= m <= 0xEF] == [0xE0]  # only JFIF
    # and by facedeid's parser
    s = metadata_summary(out)
    assert s["identifying"] == [] and s["exif_tags"] == [] and s["thumbnail_bytes"] == 0
    assert w.metadata["identifying"] == []
    assert Image.open(out).getexif() == {}


def test_jpeg_keep_metadata_allow_list_only(tmp_path):
    thumb = thumbnail_jpeg()
    p = tmp_path / "camera.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 6, exif=full_exif(6, thumb)))
    img = read_image(p)
    out = tmp_path / "kept.jpg"
    w = write_image(out, img.pixels, like=img, keep_metadata=True)
    data = out.read_bytes()
    for secret in (b"Jane Doe", b"SN123456789", b"SECRETMAKERNOTE", b"2020:01:02", b"xmpmeta", thumb[2:200]):
        assert secret not in data, secret
    assert b"SecretCam" in data and b"X100" in data
    s = metadata_summary(out)
    allowed = {tag_name(t) for t in SAFE_IFD0_TAGS | SAFE_EXIF_TAGS} | {"Orientation"}
    assert set(s["exif_tags"]) <= allowed
    assert {"Make", "Model", "ExposureTime", "FNumber", "ISOSpeedRatings", "FocalLength", "LensModel"} <= set(
        s["exif_tags"])
    assert s["orientation"] == 1
    for kind in ("gps", "thumbnail", "makernote", "xmp", "iptc", "comment"):
        assert kind not in s["found"], kind
    assert s["identifying"] == []
    ex = Image.open(out).getexif()
    assert ex[0x0112] == 1 and ex[0x010F] == "SecretCam"
    assert float(ex.get_ifd(0x8769)[0x829A]) == pytest.approx(1 / 125)
    assert "exif:Make" in w.kept


@pytest.mark.parametrize("ext", [".png", ".webp", ".tif", ".bmp"])
def test_keep_metadata_other_formats(tmp_path, ext):
    p = tmp_path / "camera.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 3))
    img = read_image(p)
    for pixels in (img.pixels, img.pixels.astype(np.uint16) * 257):
        out = tmp_path / f"kept{ext}"
        w = write_image(out, pixels, like=img, keep_metadata=True)
        data = out.read_bytes()
        assert b"Jane" not in data and b"SN123456789" not in data and b"SECRETMAKERNOTE" not in data
        s = metadata_summary(out)
        assert s["identifying"] == [] and "gps" not in s["found"] and "thumbnail" not in s["found"]
        if ext == ".bmp":
            assert s["exif_tags"] == [] and any("BMP" in n for n in w.notes)
        else:
            assert b"SecretCam" in data and "Make" in s["exif_tags"]
            assert s["orientation"] == 1
        assert read_image(out).orientation == 1


def test_mpo_second_picture_is_dropped(tmp_path):
    first = Image.fromarray(displayed_image())
    second = Image.new("RGB", (64, 40), (10, 200, 30))
    p = tmp_path / "phone.jpg"
    first.save(p, "MPO", save_all=True, append_images=[second])
    s = metadata_summary(p)
    assert "mpf" in s["identifying"]
    img = read_image(p)
    assert img.format == "JPEG" and img.n_frames == 2
    out = tmp_path / "phone_out.jpg"
    write_image(out, img.pixels, like=img)
    s = metadata_summary(out)
    assert not {"mpf", "extra-images", "trailing-data"} & set(s["found"])
    assert out.read_bytes().count(b"\xff\xd8") == 1  # a single SOI: no second picture


def test_png_text_chunks_stripped(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "Jane at the beach", zip=True)
    info.add_itxt("Description", "Jane Doe again", lang="en")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    buf = io.BytesIO()
    Image.fromarray(displayed_image()).save(buf, "PNG", pnginfo=info, exif=full_exif(1))
    data = insert_chunks(buf.getvalue(), png_chunk(b"tIME", struct.pack(">HBBBBB", 2020, 1, 2, 3, 4, 5)))
    p = tmp_path / "texty.png"
    p.write_bytes(data)
    s = metadata_summary(p)
    assert {"text", "xmp", "exif", "gps", "thumbnail", "time"} <= set(s["identifying"])
    assert {"Author", "Comment", "Description"} <= set(s["text_keys"])
    img = read_image(p)
    out = tmp_path / "clean.png"
    write_image(out, img.pixels, like=img)
    chunks = png_chunk_types(out.read_bytes())
    assert set(chunks) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs", b"iCCP"}, chunks
    assert b"Jane" not in out.read_bytes()
    np.testing.assert_array_equal(read_image(out).pixels, displayed_image())
    # keep_metadata: eXIf with the allow-list only; still no text
    out2 = tmp_path / "kept.png"
    write_image(out2, img.pixels, like=img, keep_metadata=True)
    chunks = png_chunk_types(out2.read_bytes())
    assert b"eXIf" in chunks and not {b"tEXt", b"zTXt", b"iTXt", b"tIME"} & set(chunks)
    assert metadata_summary(out2)["identifying"] == []


def test_webp_and_tiff_metadata_stripped(tmp_path):
    disp = displayed_image()
    Image.fromarray(disp).save(tmp_path / "m.webp", exif=full_exif(1), xmp=XMP)
    Image.fromarray(disp).save(tmp_path / "m.tif", tiffinfo={315: "Jane Doe", 270: "Jane at home", 305: "Cam 1.0"})
    for name in ("m.webp", "m.tif"):
        s = metadata_summary(tmp_path / name)
        assert s["identifying"], name
        img = read_image(tmp_path / name)
        for ext in (".webp", ".tif", ".png", ".jpg", ".bmp"):
            out = tmp_path / f"out_{name}{ext}"
            write_image(out, img.pixels, like=img)
            data = out.read_bytes()
            assert b"Jane" not in data and b"SecretCam" not in data, (name, ext)
            assert metadata_summary(out)["identifying"] == [], (name, ext)


def test_icc_profile_policy(tmp_path):
    icc = srgb_icc()
    p = tmp_path / "icc.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 1, icc=icc))
    img = read_image(p)
    assert img.icc_profile == icc
    for ext in (".jpg", ".png", ".webp", ".tif"):
        w = write_image(tmp_path / f"with{ext}", img.pixels, like=img)
        assert "icc_profile" in w.kept and "icc_profile" in w.metadata["found"], ext
        assert Image.open(tmp_path / f"with{ext}").info.get("icc_profile") == icc, ext
    w = write_image(tmp_path / "without.jpg", img.pixels, like=img, keep_icc=False)
    assert "icc_profile" not in w.metadata["found"]
    # an RGB profile is not attached to gray pixels
    w = write_image(tmp_path / "gray.png", img.pixels[..., 0], like=img)
    assert "icc_profile" not in w.metadata["found"]
    # 16-bit colour (facedeid's own TIFF/PNG encoders) keeps it too
    for ext in (".tif", ".png"):
        w = write_image(tmp_path / f"deep{ext}", img.pixels.astype(np.uint16) * 257, like=img)
        assert "icc_profile" in w.metadata["found"], ext
        assert Image.open(tmp_path / f"deep{ext}").info.get("icc_profile") == icc, ext


def test_dpi_kept(tmp_path):
    Image.fromarray(displayed_image()).save(tmp_path / "d.png", dpi=(300, 300))
    img = read_image(tmp_path / "d.png")
    for ext in (".png", ".jpg", ".tif"):
        write_image(tmp_path / f"d_out{ext}", img.pixels, like=img)
        dpi = Image.open(tmp_path / f"d_out{ext}").info["dpi"]
        assert dpi[0] == pytest.approx(300, abs=0.1), ext


def test_loaded_image_holds_no_identifying_metadata(tmp_path):
    p = tmp_path / "camera.jpg"
    p.write_bytes(loaded_jpeg(displayed_image(), 6))
    img = read_image(p)
    held = repr(img.exif) + repr(img.info)
    assert "Jane" not in held and "SN123" not in held
    assert set(img.exif.names()) <= {tag_name(t) for t in SAFE_IFD0_TAGS | SAFE_EXIF_TAGS}
    assert {"gps", "thumbnail"} <= set(img.metadata["identifying"])


def test_summary_of_trailing_data_and_unknown_format(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(displayed_image()).save(buf, "JPEG")
    s = metadata_summary(buf.getvalue() + b"HIDDEN SECOND IMAGE" * 10)
    assert "trailing-data" in s["identifying"] and s["trailing_bytes"] == 190
    assert metadata_summary(b"hello")["format"] is None


# --------------------------------------------------------------------------
# bad input


def _expect_input_error(path, match=None, **kw):
    with pytest.raises(InputError) as err:
        read_image(path, **kw)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    if match:
        assert match in msg.lower(), msg
    return msg


def test_bad_inputs(tmp_path):
    _expect_input_error(tmp_path / "missing.jpg", "no such file")
    (tmp_path / "empty.jpg").write_bytes(b"")
    _expect_input_error(tmp_path / "empty.jpg", "empty")
    (tmp_path / "notes.jpg").write_text("this is a text file, not a photo\n")
    _expect_input_error(tmp_path / "notes.jpg", "unknown")
    (tmp_path / "adir.png").mkdir()
    _expect_input_error(tmp_path / "adir.png", "folder")
    _expect_input_error(tmp_path / "notes.jpg" / "x.jpg", "no such file")
    os.mkfifo(tmp_path / "fifo.jpg")
    _expect_input_error(tmp_path / "fifo.jpg", "not a regular file")


def test_truncated_and_corrupt(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for fmt, ext in (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif"), ("BMP", ".bmp")):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, fmt)
        data = buf.getvalue()
        p = tmp_path / f"trunc{ext}"
        p.write_bytes(data[: len(data) // 2])
        _expect_input_error(p)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[len(png) // 2] ^= 0xFF
    (tmp_path / "flip.png").write_bytes(bytes(png))
    _expect_input_error(tmp_path / "flip.png", "corrupt")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG")
    jpg = buf.getvalue()
    (tmp_path / "garbage.jpg").write_bytes(jpg[:300] + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    _expect_input_error(tmp_path / "garbage.jpg", "corrupt jpeg")
    (tmp_path / "cut.jpg").write_bytes(jpg[:-40])
    _expect_input_error(tmp_path / "cut.jpg", "truncated")


def test_decompression_bomb(tmp_path):
    from PIL import Image as PILImage

    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) \
        + png_chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(bomb)
    before = PILImage.MAX_IMAGE_PIXELS
    msg = _expect_input_error(tmp_path / "bomb.png", "400.0 megapixels")
    assert "decompression bomb" in msg and DEFAULT_MAX_PIXELS < 20000 * 20000
    assert PILImage.MAX_IMAGE_PIXELS == before  # Pillow's global is restored
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    _expect_input_error(tmp_path / "small.png", "megapixels", max_pixels=100)
    assert read_image(tmp_path / "small.png", max_pixels=400).width == 20
    assert read_image(tmp_path / "small.png", max_pixels=None).width == 20


def test_sha256_and_fields(tmp_path):
    import hashlib

    p = tmp_path / "h.png"
    Image.fromarray(displayed_image()).save(p)
    img = read_image(p)
    assert img.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert (img.format, img.mode, img.bit_depth, img.width, img.height) == ("PNG", "RGB", 8, 64, 40)
    assert img.size_bytes == p.stat().st_size
    w = write_image(tmp_path / "h2.png", img.pixels)
    assert w.sha256 == hashlib.sha256((tmp_path / "h2.png").read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# outputs


def test_output_not_writable(tmp_path):
    a = displayed_image()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="afile"):
        write_image(tmp_path / "afile" / "out.png", a)
    (tmp_path / "adir.png").mkdir()
    with pytest.raises(OutputError, match="folder"):
        write_image(tmp_path / "adir.png", a)
    with pytest.raises(OutputError, match="/proc/"):
        write_image("/proc/facedeid-test/out.png", a)
    with pytest.raises(OutputError) as err:
        write_image("/proc/version.png", a)  # /proc refuses new files, even for root
    assert "/proc/version.png" in str(err.value)


def test_refuses_to_overwrite_input(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(displayed_image()).save(p)
    before = p.read_bytes()
    img = read_image(p)
    with pytest.raises(OutputError, match="overwrite"):
        write_image(p, img.pixels, like=img)
    with pytest.raises(OutputError, match="overwrite"):
        write_image(tmp_path / "." / "in.png", img.pixels, like=img)
    (tmp_path / "link.png").symlink_to(p)
    with pytest.raises(OutputError, match="overwrite"):
        write_image(tmp_path / "link.png", img.pixels, like=img)
    os.link(p, tmp_path / "hard.png")
    with pytest.raises(OutputError, match="overwrite"):
        write_image(tmp_path / "hard.png", img.pixels, like=img)
    with pytest.raises(OutputError, match="overwrite"):
        write_image(tmp_path / "other.png", img.pixels, protect=[tmp_path / "other.png"])
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["hard.png", "in.png", "link.png"]


def test_output_parent_created(tmp_path):
    w = write_image(tmp_path / "a" / "b" / "c.png", displayed_image())
    assert w.path.is_file()


# --------------------------------------------------------------------------
# atomic writes


def test_atomic_output_failure_leaves_nothing(tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with atomic_output(dst) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.name.startswith(".")
            tmp.write_bytes(b"half a video")
            raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []
    # an existing file keeps its old content
    dst.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dst) as tmp:
            tmp.write_bytes(b"new but partial")
            raise KeyboardInterrupt
    assert dst.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["out.mp4"]


def test_atomic_output_success_and_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "r.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    st = (tmp_path / "r.json").stat()
    assert (st.st_mode & 0o777) == 0o640
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]
    atomic_write_bytes(tmp_path / "r.json", b"[1]")
    assert (tmp_path / "r.json").read_bytes() == b"[1]"


def test_atomic_output_writer_removed_file(tmp_path):
    with pytest.raises(OutputError, match="no file"):
        with atomic_output(tmp_path / "x.png") as tmp:
            tmp.unlink()
    assert list(tmp_path.iterdir()) == []


def test_write_image_failure_midway_leaves_no_file(tmp_path, monkeypatch):
    import facedeid.io.images as images

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(images, "_encode", broken)
    with pytest.raises(OutputError, match="disk on fire"):
        write_image(tmp_path / "x.png", displayed_image())
    assert list(tmp_path.iterdir()) == []

    real_open = open

    def failing_open(file, mode="r", *a, **k):
        fh = real_open(file, mode, *a, **k)
        if "w" in mode and str(file).endswith(".tmp.jpg"):
            fh.write(b"\xff\xd8partial")
            fh.close()
            raise OSError(28, "No space left on device")
        return fh

    monkeypatch.undo()
    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(OutputError, match="No space left"):
        write_image(tmp_path / "y.jpg", displayed_image())
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# paths


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_extension_sets():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} == IMAGE_EXTS
    assert ".gif" in VIDEO_EXTS and not IMAGE_EXTS & VIDEO_EXTS
    assert media_kind("A.JPG") == "image" and media_kind("clip.MOV") == "video"
    assert media_kind("anim.gif") == "video" and media_kind("notes.txt") is None


def test_plan_single_file(tmp_path):
    src = _touch(tmp_path / "photo.JPG")
    assert plan_outputs([src]) == [(src, tmp_path / "photo_anonymized.JPG")]
    assert plan_outputs([str(src)], tmp_path / "x" / "y.png") == [(src, tmp_path / "x" / "y.png")]
    assert plan_outputs([src], tmp_path / "outdir") == [(src, tmp_path / "outdir" / "photo.JPG")]
    assert plan_outputs([src], out_ext="png") == [(src, tmp_path / "photo_anonymized.png")]
    with pytest.raises(OutputError, match="overwrite"):
        plan_outputs([src], src)
    with pytest.raises(OutputError, match="overwrite"):
        plan_outputs([src], tmp_path)  # -o the folder the input is in


def test_plan_folder_mirrors_tree(tmp_path):
    inp = tmp_path / "in"
    a = _touch(inp / "a.jpg")
    b = _touch(inp / "sub" / "deep" / "b.PNG")
    _touch(inp / "notes.txt")
    _touch(inp / "._a.jpg")
    _touch(inp / ".hidden" / "c.jpg")
    v = _touch(inp / "clip.mp4")
    out = tmp_path / "out"
    plan = plan_outputs([inp], out)
    assert plan == [(a, out / "a.jpg"), (v, out / "clip.mp4"), (b, out / "sub" / "deep" / "b.PNG")]
    images_only = plan_outputs([inp], out, exts=IMAGE_EXTS)
    assert [s for s, _ in images_only] == [a, b]


def test_plan_folder_without_output_skips_earlier_outputs(tmp_path):
    a = _touch(tmp_path / "in" / "a.jpg")
    _touch(tmp_path / "in" / "a_anonymized.jpg")
    assert plan_outputs([tmp_path / "in"]) == [(a, tmp_path / "in" / "a_anonymized.jpg")]


def test_plan_output_inside_input_is_not_walked(tmp_path):
    inp = tmp_path / "in"
    a = _touch(inp / "a.jpg")
    _touch(inp / "out" / "a.jpg")  # a previous run's output
    assert plan_outputs([inp], inp / "out") == [(a, inp / "out" / "a.jpg")]


def test_plan_several_inputs(tmp_path):
    f = _touch(tmp_path / "x" / "one.jpg")
    d1 = tmp_path / "d1"
    d2 = tmp_path / "d2"
    a = _touch(d1 / "a.jpg")
    b = _touch(d2 / "s" / "a.jpg")
    out = tmp_path / "out"
    plan = plan_outputs([d2, f, d1], out)
    assert plan == [(a, out / "d1" / "a.jpg"), (b, out / "d2" / "s" / "a.jpg"), (f, out / "one.jpg")]
    (tmp_path / "afile.jpg").write_bytes(b"x")
    with pytest.raises(OutputError, match="folder"):
        plan_outputs([f, a], tmp_path / "afile.jpg")


def test_plan_collisions_and_duplicates(tmp_path):
    a = _touch(tmp_path / "p" / "same.jpg")
    b = _touch(tmp_path / "q" / "same.jpg")
    with pytest.raises(OutputError, match="two inputs"):
        plan_outputs([a, b], tmp_path / "out")
    (tmp_path / "alias.jpg").symlink_to(a)
    plan = plan_outputs([a, tmp_path / "p" / ".." / "p" / "same.jpg", tmp_path / "alias.jpg"])
    assert len(plan) == 1
    # an input named like another input's default output
    c = _touch(tmp_path / "r" / "c.jpg")
    _touch(tmp_path / "r" / "c_anonymized.jpg")
    with pytest.raises(OutputError, match="overwrite"):
        plan_outputs([c, tmp_path / "r" / "c_anonymized.jpg"])


def test_plan_glob_patterns(tmp_path):
    a = _touch(tmp_path / "g" / "a.jpg")
    b = _touch(tmp_path / "g" / "sub" / "b.jpg")
    _touch(tmp_path / "g" / "c.png")
    _touch(tmp_path / "g" / "a_anonymized.jpg")
    plan = plan_outputs([str(tmp_path / "g" / "*.jpg")])
    assert [s for s, _ in plan] == [a]
    plan = plan_outputs([str(tmp_path / "g" / "**" / "*.jpg")], tmp_path / "o")
    # with -o, earlier sibling outputs are ordinary inputs (only sibling mode skips them)
    assert [s for s, _ in plan] == [a, tmp_path / "g" / "a_anonymized.jpg", b]
    assert plan[2][1] == tmp_path / "o" / "b.jpg"
    with pytest.raises(InputError, match="no files match"):
        plan_outputs([str(tmp_path / "g" / "*.tiff")])


def test_plan_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        plan_outputs([tmp_path / "nope.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files"):
        plan_outputs([tmp_path / "empty"], tmp_path / "o")
    with pytest.raises(InputError):
        plan_outputs([])


def test_expand_inputs_sorted_and_deterministic(tmp_path):
    for name in ("b.jpg", "a.jpg", "C.png", "sub/z.jpg", "sub/y.webp"):
        _touch(tmp_path / "d" / name)
    first = expand_inputs([tmp_path / "d"])
    assert [f.rel.as_posix() for f in first] == ["C.png", "a.jpg", "b.jpg", "sub/y.webp", "sub/z.jpg"]
    assert first == expand_inputs([tmp_path / "d"])
    assert all(f.root == tmp_path / "d" for f in first)
