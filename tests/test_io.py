"""Tests for restore.io: image reading/writing, errors, atomic writes, listing."""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import pytest
import tifffile
from skimage import data as skdata

from restore.io import (
    IMAGE_EXTENSIONS,
    Image,
    ImageReadError,
    atomic_write,
    list_images,
    read_image,
    safe_output_path,
    to_numpy,
    to_tensor,
    write_image,
)
from restore.io.atomic import atomic_write_bytes, atomic_write_text

RNG = np.random.default_rng(1234)


def rand_u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def rand_u16(*shape):
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


def asym_rgb(h=24, w=40):
    """RGB image whose colour channels and orientation are all distinguishable."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]  # red grows to the right
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]  # green grows downwards
    img[: h // 4, : w // 4, 2] = 255  # blue block in the top-left corner
    return img


def listdir(path):
    return sorted(os.listdir(path))


# ----------------------------------------------------------------------------- round trips

def test_png_grey_8bit_read_and_round_trip(tmp_path):
    src = rand_u8(32, 40)
    cv2.imwrite(str(tmp_path / "g.png"), src)
    img = read_image(tmp_path / "g.png")
    assert isinstance(img, Image)
    assert img.data.shape == (32, 40, 1) and img.data.dtype == np.float32
    assert img.channels == 1 and img.dtype == np.uint8 and img.alpha is None and img.format == "png"
    np.testing.assert_array_equal(img.data[..., 0], src.astype(np.float32) / 255)
    write_image(tmp_path / "out.png", img.data, like=img)
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and back.shape == (32, 40)
    np.testing.assert_array_equal(back, src)


def test_png_rgb_order_and_round_trip(tmp_path):
    rgb = skdata.astronaut()[::8, ::8]  # 64x64x3, red-dominant
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    img = read_image(tmp_path / "a.png")
    assert img.data.shape == (64, 64, 3) and img.channels == 3 and img.dtype == np.uint8
    np.testing.assert_array_equal(np.rint(img.data * 255).astype(np.uint8), rgb)  # RGB, not BGR
    write_image(tmp_path / "b.png", img.data, like=img)
    np.testing.assert_array_equal(read_image(tmp_path / "b.png").data, img.data)


def test_png_16bit_round_trip(tmp_path):
    src = rand_u16(20, 24, 3)
    src[0, 0] = [0, 65535, 1]
    cv2.imwrite(str(tmp_path / "s.png"), src[..., ::-1])
    img = read_image(tmp_path / "s.png")
    assert img.dtype == np.uint16 and img.data.max() <= 1.0
    np.testing.assert_allclose(img.data, src / 65535.0, atol=1e-7)
    write_image(tmp_path / "t.png", img.data, like=img)
    back = cv2.imread(str(tmp_path / "t.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, src)


@pytest.mark.parametrize("depth", [np.uint8, np.uint16])
def test_png_rgba_alpha_is_identical_after_write(tmp_path, depth):
    maxv = np.iinfo(depth).max
    rgba = RNG.integers(0, maxv + 1, (16, 20, 4)).astype(depth)
    cv2.imwrite(str(tmp_path / "in.png"), rgba[..., [2, 1, 0, 3]])
    img = read_image(tmp_path / "in.png")
    assert img.channels == 3 and img.data.shape == (16, 20, 3)
    assert img.alpha.dtype == depth
    np.testing.assert_array_equal(img.alpha, rgba[..., 3])
    np.testing.assert_array_equal(np.rint(img.data * maxv).astype(depth), rgba[..., :3])
    out = write_image(tmp_path / "out.png", 1.0 - img.data, like=img)
    again = read_image(out)
    assert again.dtype == depth
    np.testing.assert_array_equal(again.alpha, rgba[..., 3])
    np.testing.assert_array_equal(np.rint(again.data * maxv).astype(depth), maxv - rgba[..., :3])


def test_png_grey_alpha_stays_grey(tmp_path):
    from PIL import Image as PILImage

    la = rand_u8(12, 16, 2)
    PILImage.fromarray(la, "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.channels == 1 and img.data.shape == (12, 16, 1)
    np.testing.assert_array_equal(np.rint(img.data[..., 0] * 255).astype(np.uint8), la[..., 0])
    np.testing.assert_array_equal(img.alpha, la[..., 1])


def test_tiff_planar_and_imagej_channel_layouts(tmp_path):
    chw = rand_u16(3, 16, 20)
    tifffile.imwrite(tmp_path / "planar.tif", chw, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "ij.tif", chw, imagej=True, metadata={"axes": "CYX"})
    for name in ("planar.tif", "ij.tif"):
        img = read_image(tmp_path / name)
        assert img.data.shape == (16, 20, 3) and img.dtype == np.uint16, name
        np.testing.assert_array_equal(np.rint(img.data * 65535).astype(np.uint16), chw.transpose(1, 2, 0))


@pytest.mark.parametrize("shape", [(16, 24), (16, 24, 3), (16, 24, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_round_trip(tmp_path, dtype, shape):
    if dtype == np.float32:
        src = (RNG.standard_normal(shape) * 3).astype(np.float32)  # raw values, outside [0, 1]
    else:
        src = RNG.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    tifffile.imwrite(tmp_path / "in.tif", src, photometric="minisblack" if len(shape) == 2 else "rgb",
                     **({"extrasamples": ("unassalpha",)} if shape[-1:] == (4,) else {}))
    img = read_image(tmp_path / "in.tif")
    assert img.dtype == dtype and img.format == "tiff" and img.data.dtype == np.float32
    colour = src[..., :3] if len(shape) == 3 else src[..., None]
    assert img.channels == colour.shape[2]
    scale = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    np.testing.assert_allclose(img.data * scale, colour, rtol=0, atol=1e-3 if scale > 1 else 0)
    if len(shape) == 3 and shape[2] == 4:
        np.testing.assert_array_equal(img.alpha, src[..., 3])
    else:
        assert img.alpha is None
    out = write_image(tmp_path / "out.tiff", img.data, like=img)
    back = tifffile.imread(out)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, src)


def test_npy_float_and_int(tmp_path):
    f = (RNG.standard_normal((12, 10)) * 5).astype(np.float32)
    np.save(tmp_path / "f.npy", f)
    img = read_image(tmp_path / "f.npy")
    assert img.data.shape == (12, 10, 1) and img.dtype == np.float32 and img.format == "npy"
    np.testing.assert_array_equal(img.data[..., 0], f)  # raw values, not rescaled
    write_image(tmp_path / "g.npy", img.data, like=img)
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), f)

    u = rand_u8(9, 11, 3)
    np.save(tmp_path / "u.npy", u)
    img = read_image(tmp_path / "u.npy")
    assert img.dtype == np.uint8 and img.channels == 3
    np.testing.assert_array_equal(img.data, u.astype(np.float32) / 255)
    write_image(tmp_path / "v.npy", img.data, like=img)
    back = np.load(tmp_path / "v.npy")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, u)


def test_jpeg_reads_rgb_with_right_shape(tmp_path):
    rgb = asym_rgb(30, 50)
    cv2.imwrite(str(tmp_path / "p.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    img = read_image(tmp_path / "p.jpg")
    assert img.data.shape == (30, 50, 3) and img.dtype == np.uint8 and img.format == "jpeg"
    assert np.abs(img.data * 255 - rgb).mean() < 3  # channel order is RGB
    out = write_image(tmp_path / "q.JPEG", img.data, like=img)
    assert read_image(out).data.shape == (30, 50, 3)


# ----------------------------------------------------------------------------- EXIF orientation

def _save_with_orientation(path, rgb, orientation, **kw):
    from PIL import Image as PILImage

    pil = PILImage.fromarray(rgb)
    exif = pil.getexif()
    exif[0x0112] = orientation
    pil.save(path, exif=exif.tobytes(), **kw)


def test_jpeg_exif_orientation_6_is_applied(tmp_path):
    rgb = asym_rgb(24, 40)
    _save_with_orientation(tmp_path / "o.jpg", rgb, 6, quality=98)
    img = read_image(tmp_path / "o.jpg")
    assert img.data.shape == (40, 24, 3)  # rotated 90 degrees clockwise
    blue = img.data[..., 2]
    assert blue[:5, -5:].mean() > 0.8 and blue[-5:, :5].mean() < 0.2  # top-left went to top-right


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_orientation_matches_pillow(tmp_path, orientation):
    from PIL import Image as PILImage, ImageOps

    rgba = np.dstack([asym_rgb(12, 20), rand_u8(12, 20)])
    _save_with_orientation(tmp_path / "o.png", rgba, orientation)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    img = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(np.rint(img.data * 255).astype(np.uint8), expected[..., :3])
    np.testing.assert_array_equal(img.alpha, expected[..., 3])  # alpha rotated along


def test_exif_orientation_without_pillow(tmp_path, monkeypatch):
    _save_with_orientation(tmp_path / "o.jpg", asym_rgb(24, 40), 8, quality=98)
    monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" now raises ImportError
    img = read_image(tmp_path / "o.jpg")
    assert img.data.shape == (40, 24, 3)
    assert img.data[-5:, :5, 2].mean() > 0.8  # rotated 90 degrees counter-clockwise


# ----------------------------------------------------------------------------- bad inputs

def _make_bad(tmp_path, case):
    p = tmp_path
    if case == "empty":
        (p / "photo.png").write_bytes(b"")
        return p / "photo.png", "empty"
    if case == "garbage":
        (p / "x.png").write_bytes(b"this is not a png at all" * 10)
        return p / "x.png", "not a decodable image"
    if case == "truncated_png":
        cv2.imwrite(str(p / "full.png"), rand_u8(64, 64, 3))
        raw = (p / "full.png").read_bytes()
        (p / "cut.png").write_bytes(raw[: len(raw) // 2])
        return p / "cut.png", "not a decodable image"
    if case == "truncated_jpeg":
        cv2.imwrite(str(p / "full.jpg"), rand_u8(64, 64, 3))
        raw = (p / "full.jpg").read_bytes()
        (p / "cut.jpg").write_bytes(raw[: len(raw) * 3 // 4])
        return p / "cut.jpg", "truncated JPEG"
    if case == "extension":
        (p / "notes.txt").write_text("hello")
        return p / "notes.txt", "unsupported extension '.txt'"
    if case == "tiny":
        cv2.imwrite(str(p / "tiny.png"), rand_u8(1, 1))
        return p / "tiny.png", "1x1 pixels"
    if case == "narrow":
        np.save(p / "narrow.npy", np.zeros((100, 5), np.float32))
        return p / "narrow.npy", "5x100 pixels"
    if case == "missing":
        return p / "missing", "no such file"
    if case == "folder":
        (p / "dir.png").mkdir()
        return p / "dir.png", "folder"
    if case == "nan_npy":
        a = np.zeros((16, 16, 3), np.float32)
        a[3, 4, 1] = np.nan
        np.save(p / "nan.npy", a)
        return p / "nan.npy", "NaN"
    if case == "inf_tiff":
        a = np.zeros((16, 16), np.float32)
        a[0, 0] = np.inf
        tifffile.imwrite(p / "inf.tif", a)
        return p / "inf.tif", "infinite"
    if case == "npy_4d":
        np.save(p / "vol.npy", np.zeros((2, 16, 16, 3), np.float32))
        return p / "vol.npy", "shape (2, 16, 16, 3)"
    if case == "npy_chw":
        np.save(p / "chw.npy", np.zeros((3, 16, 16), np.float32))
        return p / "chw.npy", "channels-first"
    if case == "npy_int32":
        np.save(p / "i32.npy", np.zeros((16, 16), np.int32))
        return p / "i32.npy", "int32"
    if case == "npy_object":
        np.save(p / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return p / "obj.npy", "Python objects"
    if case == "tiff_stack":
        tifffile.imwrite(p / "stack.tif", np.zeros((5, 16, 16), np.uint8))
        return p / "stack.tif", "stack"
    raise AssertionError(case)


BAD_CASES = ["empty", "garbage", "truncated_png", "truncated_jpeg", "extension", "tiny", "narrow",
             "missing", "folder", "nan_npy", "inf_tiff", "npy_4d", "npy_chw", "npy_int32", "npy_object",
             "tiff_stack"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_raises_one_line_error_naming_the_file(tmp_path, case):
    path, expected = _make_bad(tmp_path, case)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    err = info.value
    msg = str(err)
    assert isinstance(err, ValueError)
    assert "\n" not in msg and msg.count(path.name) >= 1 and msg.startswith(str(path))
    assert expected in msg, msg
    assert err.path == path and err.reason in msg


def test_error_message_format_for_plain_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"^photo\.png: file is empty \(0 bytes\) — re-export the image$"):
        read_image("photo.png")
    with pytest.raises(ImageReadError, match=r"^missing: no such file$"):
        read_image("missing")


def test_min_size_is_configurable(tmp_path):
    np.save(tmp_path / "s.npy", np.zeros((4, 4), np.float32))
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "s.npy")
    assert read_image(tmp_path / "s.npy", min_size=4).data.shape == (4, 4, 1)


# ----------------------------------------------------------------------------- write_image rules

def test_write_quantisation_clips_and_rounds(tmp_path):
    vals = np.array([[-0.5, 0.0, 0.2 / 255, 0.6 / 255, 0.5, 1.0, 1.7, 0.9999]], np.float32)
    vals = np.repeat(vals, 8, axis=0)
    write_image(tmp_path / "q.png", vals, dtype=np.uint8)
    got = cv2.imread(str(tmp_path / "q.png"), cv2.IMREAD_UNCHANGED)[0]
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 128, 255, 255, 255])
    write_image(tmp_path / "q16.png", vals, dtype=np.uint16)
    got16 = cv2.imread(str(tmp_path / "q16.png"), cv2.IMREAD_UNCHANGED)[0]
    np.testing.assert_array_equal(got16, np.rint(np.clip(vals[0], 0, 1) * 65535).astype(np.uint16))


def test_write_dtype_defaults_and_format_limits(tmp_path):
    x = RNG.random((10, 12, 3), dtype=np.float32)
    assert tifffile.imread(write_image(tmp_path / "a.tif", x)).dtype == np.float32
    assert cv2.imread(str(write_image(tmp_path / "a.png", x)), cv2.IMREAD_UNCHANGED).dtype == np.uint8
    float_src = Image(data=x, alpha=None, dtype=np.dtype(np.float32), channels=3)
    png = cv2.imread(str(write_image(tmp_path / "b.png", x, like=float_src)), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16  # float source -> the most precise dtype PNG can hold
    with pytest.raises(ValueError, match="JPEG"):
        write_image(tmp_path / "c.jpg", x, dtype=np.uint16)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "d.png", np.full((8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="extension"):
        write_image(tmp_path / "e.bmp", x)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "f.png", np.zeros((8, 8, 2), np.float32))
    assert not (tmp_path / "c.jpg").exists() and not (tmp_path / "d.png").exists()


def test_write_explicit_alpha_and_jpeg_drops_inherited_alpha(tmp_path):
    x = RNG.random((10, 12), dtype=np.float32)
    a = rand_u8(10, 12)
    img = read_image(write_image(tmp_path / "ga.tif", x, dtype=np.uint8, alpha=a))
    assert img.channels == 1 and img.alpha.dtype == np.uint8
    np.testing.assert_array_equal(img.alpha, a)
    with pytest.warns(UserWarning, match="alpha"):
        out = write_image(tmp_path / "ga.jpg", img.data, like=img)
    assert read_image(out).alpha is None
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "x.jpg", x, alpha=a)
    with pytest.raises(ValueError, match="alpha shape"):
        write_image(tmp_path / "y.png", x, alpha=a[:5])


def test_write_overwrite_false_and_creates_parents(tmp_path):
    x = np.zeros((8, 8), np.float32)
    out = write_image(tmp_path / "new" / "sub" / "a.png", x)
    assert out.exists()
    before = out.read_bytes()
    with pytest.raises(FileExistsError):
        write_image(out, np.ones((8, 8), np.float32), overwrite=False)
    assert out.read_bytes() == before
    assert listdir(out.parent) == ["a.png"]


# ----------------------------------------------------------------------------- atomic writes

def test_atomic_write_leaves_no_temp_files(tmp_path):
    seen = []

    def writer(tmp):
        seen.append(tmp)
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".txt")
        with open(tmp, "w") as fh:
            fh.write("hello")

    atomic_write(tmp_path / "a.txt", writer)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert listdir(tmp_path) == ["a.txt"] and not os.path.exists(seen[0])
    atomic_write_text(tmp_path / "b.txt", "héllo\n")
    atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert listdir(tmp_path) == ["a.txt", "b.txt", "c.bin"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(tmp_path / "b.txt").st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


def test_failing_writer_leaves_destination_untouched(tmp_path):
    dest = tmp_path / "keep.png"
    dest.write_bytes(b"original")

    def bad_writer(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half-writ")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(dest, bad_writer)
    assert dest.read_bytes() == b"original"
    assert listdir(tmp_path) == ["keep.png"]

    with pytest.raises(FileExistsError):
        atomic_write_bytes(dest, b"new", overwrite=False)
    assert dest.read_bytes() == b"original" and listdir(tmp_path) == ["keep.png"]
    atomic_write_bytes(tmp_path / "fresh.bin", b"new", overwrite=False)
    assert (tmp_path / "fresh.bin").read_bytes() == b"new"


# ----------------------------------------------------------------------------- output paths

def test_safe_output_path_refuses_the_input_itself(tmp_path):
    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    src.write_bytes(b"x")
    with pytest.raises(ValueError, match="input"):
        safe_output_path(src, tmp_path / "in")
    with pytest.raises(ValueError):
        safe_output_path(src, tmp_path / "in" / ".." / "in")
    (tmp_path / "link").symlink_to(tmp_path / "in")
    with pytest.raises(ValueError):
        safe_output_path(src, tmp_path / "link")
    assert safe_output_path(src, tmp_path / "in", "_denoised") == tmp_path / "in" / "photo_denoised.png"
    assert safe_output_path(src, tmp_path / "out") == tmp_path / "out" / "photo.png"
    assert safe_output_path(src, tmp_path / "in", ext="tif") == tmp_path / "in" / "photo.tif"


# ----------------------------------------------------------------------------- listing

def test_list_images_on_a_folder_tree(tmp_path):
    for rel in ["a.png", "B.JPG", "c.tiff", "d.npy", "notes.txt", ".hidden.png",
                "sub/e.Tif", "sub/f.jpeg", "sub/deep/g.png", ".git/h.png"]:
        f = tmp_path / "data" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    root = tmp_path / "data"
    got = list_images([str(root)])
    assert [p.relative_to(root).as_posix() for p in got] == [
        "B.JPG", "a.png", "c.tiff", "d.npy", "sub/e.Tif", "sub/f.jpeg", "sub/deep/g.png"]
    assert [p.name for p in list_images([root], recursive=False)] == ["B.JPG", "a.png", "c.tiff", "d.npy"]
    # explicit files are kept whatever their extension (and missing ones, for read_image to report);
    # duplicates from overlapping inputs collapse
    mixed = list_images([root / "notes.txt", root / "a.png", str(root / "sub"), root / "nope.png",
                         str(root / "sub" / "deep" / ".." / "f.jpeg")])
    assert [p.name for p in mixed] == ["a.png", "nope.png", "notes.txt", "e.Tif", "f.jpeg", "g.png"]
    globbed = list_images([str(root / "*")], recursive=True)
    assert {p.name for p in globbed} == {"a.png", "B.JPG", "c.tiff", "d.npy", "e.Tif", "f.jpeg", "g.png"}
    assert ".png" in IMAGE_EXTENSIONS and ".txt" not in IMAGE_EXTENSIONS


# ----------------------------------------------------------------------------- tensors

def test_to_tensor_and_back():
    import torch

    x = RNG.random((5, 7, 3), dtype=np.float32)
    t = to_tensor(x)
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (3, 5, 7) and t.dtype == torch.float32
    assert float(t[2, 4, 6]) == x[4, 6, 2]
    np.testing.assert_array_equal(to_numpy(t), x)
    np.testing.assert_array_equal(to_numpy(t[None].double()), x)
    assert tuple(to_tensor(x[..., 0]).shape) == (1, 5, 7)
