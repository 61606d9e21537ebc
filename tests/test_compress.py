"""The learned image codec: real bitstreams that decode bit-exactly, a file format that refuses
every damaged or foreign file, rate estimates that match the bytes, and the BD-rate."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as samples

from aekit.apps.compress import ImageCodec, bd_rate, psnr
from aekit.apps.compress.bitstream import Compressed
from aekit.apps.compress.codec import _padded, as_rgb
from aekit.cli import main
from aekit.errors import DataError, DataNotice, ParameterError
from aekit.nn.codec import HyperpriorCodec

TINY = dict(channels=16, latent_channels=24, crop=64, crops_per_image=8, downsample=1, epochs=20, batch_size=8,
            lr=3e-3)


@pytest.fixture(scope="module")
def photos():
    return [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket()]


@pytest.fixture(scope="module")
def codec(photos):
    return ImageCodec(**TINY).fit(photos[1:])


@pytest.fixture(scope="module")
def held_out(photos):
    return photos[0][100:197, 150:261]  # 97 x 111: an odd size, never trained on


def test_round_trip_is_bit_exact_on_the_latents(codec, held_out):
    assert codec.model_.groups == 2  # the checkerboard context model, by default
    data = codec.compress(held_out, 3)
    restored = codec.decompress(data)
    assert restored.shape == held_out.shape and restored.dtype == np.uint8
    _, y_hat, _, _ = codec._code(_padded(held_out), 2)  # the latents as the encoder coded them
    expected = codec.model_.synthesise(y_hat, 2)[0, :, :97, :111]
    np.testing.assert_array_equal(restored, np.round(expected.clamp(0, 1).permute(1, 2, 0).numpy() * 255))
    np.testing.assert_array_equal(codec.decompress(data), restored)  # deterministic


def test_refinement_lowers_the_coded_cost_and_decodes_as_usual(codec, held_out):
    lam = codec.model_.config["lambdas"][3]

    def cost(data: bytes) -> float:  # what the codec minimises: bits per pixel + lambda x 255^2 x MSE
        mse = np.mean((codec.decompress(data).astype(float) - held_out) ** 2)
        return len(data) * 8 / held_out[..., 0].size + lam * mse

    plain, refined = codec.compress(held_out, 4), codec.compress(held_out, 4, refine=10)
    assert cost(refined) < cost(plain)
    with pytest.raises(ParameterError, match="refine"):
        codec.compress(held_out, 4, refine=-1)


def test_fine_tuning_starts_from_the_saved_codec(tmp_path, photos, held_out):
    base = ImageCodec(**{**TINY, "epochs": 1, "context": "none", "lambdas": (0.002, 0.02)}).fit(photos[1:2])
    base.save(tmp_path / "base")
    tuned = ImageCodec(**{**TINY, "lambdas": (0.002, 0.006, 0.02), "init_model": str(tmp_path / "base")})
    net = HyperpriorCodec(16, 24, (0.002, 0.006, 0.02), "checkerboard")
    tuned._start_from(net, base.model_)
    tuned._set_model(net.eval())
    for q, base_q in ((1, 1), (3, 2)):  # same lambdas, same network: the same files' sizes and images
        a, b = tuned.compress(held_out, q), base.compress(held_out, base_q)
        assert len(a) == len(b)
        np.testing.assert_array_equal(tuned.decompress(a), base.decompress(b))
    middle = net.gain[1].detach()  # the new level's gains lie between its neighbours' (log lambda)
    assert bool(((middle - net.gain[0]) * (net.gain[2] - middle) >= -1e-6).all())
    with pytest.raises(ParameterError, match="widths"):
        ImageCodec(**{**TINY, "channels": 8})._start_from(HyperpriorCodec(8, 24), base.model_)


def test_crops_are_bytes_and_the_loss_reads_bytes_as_floats(codec, photos):
    crops = codec._crops(photos[1:2], np.random.default_rng(0))
    assert crops.dtype == torch.uint8 and crops.shape[1:] == (3, 64, 64)  # a quarter of float32's memory
    model = codec.model_.eval()  # eval: rounding, not noise, so both losses are deterministic
    with torch.no_grad():
        as_bytes, as_floats = model.loss(crops[:4])[0], model.loss(crops[:4].float() / 255)[0]
    assert float(as_bytes) == pytest.approx(float(as_floats), rel=1e-6)


def test_a_device_this_machine_lacks_is_refused_in_one_line(photos, tmp_path, capsys):
    from aekit.training import TrainConfig

    with pytest.raises(ParameterError, match="torch device"):
        TrainConfig(device="gpu-please")
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first where there are none
    with pytest.raises(ParameterError, match="device"):
        ImageCodec(**{**TINY, "device": missing}).fit(photos[1:2])
    out = tmp_path / "model"
    assert main(["compress", "train", str(tmp_path), "--out", str(out), "--device", missing]) != 0
    assert missing in capsys.readouterr().err and not out.exists()


def test_training_lowers_the_rate_distortion_loss(codec):
    history = [h["train_loss"] for h in codec.training_history_]
    assert history[-1] < 0.8 * history[0]


def test_qualities_trade_bytes_and_estimates_match_the_bytes(codec, held_out):
    # (this tiny codec is trained for seconds: fidelity per quality is the bundled codec's test)
    sizes = [len(codec.compress(held_out, q)) for q in (1, 8)]
    assert sizes[1] > sizes[0]
    overhead = len(Compressed(b"", 0, 1, 1, b"", b"").to_bytes())
    for q in (1, 3):  # (this tiny codec's top qualities code residuals far out in the Gaussian's tails,
        # where the 24-bit coder's floor and the estimate's 1e-9 floor differ)
        payload = len(codec.compress(held_out, q)) - overhead
        estimate = codec.estimated_bits(held_out, q) / 8
        assert abs(payload - estimate) <= 0.03 * estimate + 8  # + the range coder's last words


@pytest.mark.parametrize("damage, message", [
    (lambda d: b"", "is empty"),
    (lambda d: b"PK\x03\x04" + d[4:], "not an aekit compressed image"),
    (lambda d: d[:-7], "truncated"),
    (lambda d: d[:50] + bytes([d[50] ^ 0x10]) + d[51:], "damaged"),
    (lambda d: d[:3] + b"\x09" + d[4:], "format version 9"),
    (lambda d: d[:3] + b"\x01" + d[4:], "format version 1; this aekit reads versions 2 and 3"),
])
def test_damaged_or_foreign_files_are_refused(codec, held_out, damage, message):
    data = codec.compress(held_out, 2)
    with pytest.raises(DataError, match=message):
        codec.decompress(damage(data))


def test_a_grey_image_decodes_to_one_channel_and_version_2_files_still_decode(codec, held_out):
    """A grey photo came back as RGB, three times its channels. Its file now says it is grey
    (a flag of format version 3), and it decodes to ``[H, W]``, the mean of the decoder's
    channels; version 2 files, without flags, decode as before."""
    import zlib

    from aekit.apps.compress.bitstream import CHECKSUM, HEADERS

    def resealed(body: bytes) -> bytes:
        return body + CHECKSUM.pack(zlib.crc32(body))

    grey = held_out.mean(axis=2).round().astype(np.uint8)
    data = codec.compress(grey, 3)
    assert Compressed.from_bytes(data).grey and not Compressed.from_bytes(codec.compress(held_out, 3)).grey
    decoded = codec.decompress(data)
    assert decoded.shape == grey.shape and decoded.dtype == np.uint8
    assert psnr(grey, decoded) >= psnr(np.repeat(grey[:, :, None], 3, axis=2), codec.decompress(
        resealed(_as_version_2(data[:-CHECKSUM.size])))) - 0.05  # the mean: no worse than the three channels
    colour = codec.compress(held_out, 3)
    np.testing.assert_array_equal(codec.decompress(resealed(_as_version_2(colour[:-CHECKSUM.size]))),
                                  codec.decompress(colour))
    v3 = HEADERS[3]
    fields = list(v3.unpack_from(colour))
    fields[4] = 2  # a flag no aekit writes, under a valid checksum
    with pytest.raises(DataError, match="invalid header"):
        codec.decompress(resealed(v3.pack(*fields) + colour[v3.size:-CHECKSUM.size]))


def _as_version_2(body: bytes) -> bytes:
    """A version 3 file's body (without its checksum) as version 2 wrote it: no flags byte."""
    from aekit.apps.compress.bitstream import HEADERS

    fields = list(HEADERS[3].unpack_from(body))
    fields[1] = 2
    del fields[4]
    return HEADERS[2].pack(*fields) + body[HEADERS[3].size:]


def test_a_quality_the_codec_lacks_is_a_data_error(codec, held_out):
    c = Compressed.from_bytes(codec.compress(held_out, 2))
    lacking = codec.qualities + 1
    forged = Compressed(c.model_id, lacking, c.height, c.width, c.z, c.y).to_bytes()  # a valid checksum
    with pytest.raises(DataError, match=f"quality {lacking}"):
        codec.decompress(forged)


def _forged(data: bytes, height: int | None = None, width: int | None = None, flip: int | None = None) -> bytes:
    """``data`` with another size in its header and/or a payload byte flipped, the CRC made
    right again: what a hostile file looks like."""
    import zlib

    from aekit.apps.compress.bitstream import CHECKSUM, HEADERS, VERSION

    header = HEADERS[VERSION]
    body = bytearray(data[:-CHECKSUM.size])
    fields = list(header.unpack_from(body))
    fields[5] = height or fields[5]
    fields[6] = width or fields[6]
    body[:header.size] = header.pack(*fields)
    if flip is not None:
        body[flip] ^= 0xFF
    return bytes(body) + CHECKSUM.pack(zlib.crc32(bytes(body)))


@pytest.mark.parametrize("forge, message", [
    (lambda d: _forged(d, 65536, 65536), "more pixels than aekit encodes"),
    (lambda d: _forged(d, 8000, 8000), "needs at least .* bytes of side information"),
    (lambda d: _forged(d, 1, 1), "does not decode to a 1x1 image"),
    (lambda d: _forged(d, flip=40), "does not decode to a 111x97 image"),
    (lambda d: _forged(d, flip=-20), "does not decode to a 111x97 image"),
])
def test_forged_headers_and_payloads_are_refused_before_allocating(codec, held_out, forge, message):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match=message):
        codec.decompress(forge(codec.compress(held_out, 3)))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KB


def test_a_file_from_another_model_is_refused(codec, photos, held_out):
    other = ImageCodec(**{**TINY, "epochs": 1, "random_state": 1}).fit(photos[1:2])
    with pytest.raises(DataError, match="another codec model"):
        codec.decompress(other.compress(held_out, 1))


def test_bad_images_and_qualities(codec):
    with pytest.raises(DataError, match="finite"):
        codec.compress(np.full((8, 8, 3), np.nan), 1)
    with pytest.raises(DataError, match=r"\[H, W, 3\]"):
        codec.compress(np.zeros((2, 8, 8, 3), np.uint8), 1)
    with pytest.raises(Exception, match="quality"):
        codec.compress(np.zeros((8, 8, 3), np.uint8), codec.qualities + 1)
    assert as_rgb(np.zeros((5, 4), np.uint8)).shape == (5, 4, 3)  # gray becomes RGB
    with pytest.raises(DataError, match=r"fractions in \[0, 1\]; the codec takes 0-255"):
        as_rgb(np.full((4, 4, 3), 0.5))  # rounded, it would be a black image
    assert as_rgb(np.full((4, 4, 3), 200.0)).max() == 200  # 0-255 as floats is fine


def test_image_files_are_read_whole_and_bad_files_named(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((1100, 1300, 3), np.uint8)).save(big)  # larger than the models' image cap
    assert as_rgb(big).shape == (1100, 1300, 3)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot be decoded as an image"):
        as_rgb(bad)
    with pytest.raises(DataError, match="does not exist"):
        as_rgb(tmp_path / "missing.png")
    # an animation: its first frame, and a note that the others are left out
    frames = [Image.fromarray(np.full((6, 8, 3), v, np.uint8)) for v in (10, 120, 240)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(DataNotice, match="anim.gif holds 3 frames .an animation or pages.; only the first is encoded"):
        first = as_rgb(tmp_path / "anim.gif")
    assert first.shape == (6, 8, 3) and abs(int(first.mean()) - 10) <= 2


def test_bd_rate_on_a_hand_computed_case():
    anchor = [(0.25, 28.0), (0.5, 31.0), (1.0, 34.0), (2.0, 37.0)]
    assert bd_rate(anchor, [(r * 0.8, q) for r, q in anchor]) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    # 3 dB better everywhere on a 3 dB-per-doubling curve: half the rate
    assert bd_rate(anchor, [(r, q + 3.0) for r, q in anchor]) == pytest.approx(-50.0, abs=1e-6)
    with pytest.raises(DataError, match="share no PSNR range"):
        bd_rate(anchor, [(r, q + 20) for r, q in anchor])


def test_cli_encode_decode_eval(codec, held_out, tmp_path, capsys):
    model = codec.save(tmp_path / "codec")
    image = tmp_path / "in.png"
    Image.fromarray(held_out).save(image)
    aek, png = tmp_path / "x.aek", tmp_path / "x.png"
    assert main(["compress", "encode", str(image), "--quality", "4", "--out", str(aek), "--model", str(model),
                 "--refine", "3"]) == 0
    printed = capsys.readouterr().out
    rate = 8 * aek.stat().st_size / (97 * 111)
    assert f"{rate:.3f} bits per pixel" in printed
    assert main(["compress", "decode", str(aek), "--out", str(png), "--model", str(model)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(png)), codec.decompress(aek.read_bytes()))
    capsys.readouterr()
    plot = tmp_path / "rd.png"
    assert main(["compress", "eval", str(image), "--model", str(model), "--plot", str(plot), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert sum(line.startswith("aekit") for line in lines) == codec.qualities and sum(line.startswith("JPEG") for line in lines) == 11
    assert sum(line.startswith("WebP") for line in lines) == 11
    from PIL import features

    assert sum(line.startswith("AVIF") for line in lines) == (11 if features.check("avif") else 0)
    assert any(line.startswith("BD-rate against JPEG") for line in lines)
    assert any(line.startswith("BD-rate against WebP") for line in lines)
    jpeg = [float(line.split()[2]) for line in lines if line.startswith("JPEG")]
    assert jpeg == sorted(jpeg) and jpeg[-1] > 3 * jpeg[0]  # real file sizes, rising with quality
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["compress", "eval", str(image), "--model", str(model), "--plot", str(image)]) == 2  # an input
    assert "is also an input" in capsys.readouterr().err
    truncated = tmp_path / "t.aek"
    truncated.write_bytes(aek.read_bytes()[:20])
    assert main(["compress", "decode", str(truncated), "--out", str(tmp_path / "t.png"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert "truncated" in err and "\n" not in err and not (tmp_path / "t.png").exists()
    assert main(["compress", "decode", str(aek), "--out", str(aek), "--model", str(model)]) == 2  # never over an input


def test_eval_reads_a_folder_and_encode_names_a_folder(codec, held_out, photos, tmp_path, capsys):
    from aekit.apps.compress.jobs import evaluate

    model = codec.save(tmp_path / "codec")
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(held_out).save(folder / "a.png")
    Image.fromarray(photos[2][:80, :96]).save(folder / "b.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    files = [folder / "a.png", folder / "b.jpg"]
    assert evaluate([folder], model, peers=False, progress=False) == evaluate(files, model, peers=False, progress=False)
    assert main(["compress", "encode", str(folder), "--out", str(tmp_path / "f.aek"), "--model", str(model)]) == 2
    assert capsys.readouterr().err.strip() == f"aekit: error: {folder} is a folder; give one image file"


def test_the_bundled_codec_works_without_a_model_flag(held_out, tmp_path, capsys):
    from aekit.apps.compress.codec import DEFAULT_MODEL, default_model

    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert size < 20e6  # the budget for every quality level together
    codec = default_model()
    assert codec.qualities == 10
    image, aek, png = tmp_path / "in.png", tmp_path / "x.aek", tmp_path / "x.png"
    Image.fromarray(held_out).save(image)
    assert main(["compress", "encode", str(image), "--quality", "2", "--out", str(aek)]) == 0
    assert main(["compress", "decode", str(aek), "--out", str(png)]) == 0
    restored = np.asarray(Image.open(png))
    assert restored.shape == held_out.shape and psnr(held_out, restored) > 20  # a photo, not noise
    coded = [codec.compress(held_out, q) for q in range(1, codec.qualities + 1)]
    sizes = [len(data) for data in coded]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 4  # qualities trade bytes for fidelity
    fidelity = [psnr(held_out, codec.decompress(data)) for data in coded]
    assert fidelity == sorted(fidelity) and fidelity[-1] > fidelity[0] + 6


def test_large_images_are_coded_in_tiles_as_in_one_pass(codec, photos, monkeypatch):
    """The transforms run on tiles with a halo, the entropy model on bands of rows (memory
    follows the tile: a 24-megapixel photo took 6.5 GB whole). Only float rounding can tell
    them from the whole pass: on this project's box the files are the same bytes; here any
    machine's rounding is allowed, a byte of file size and a level of a few pixels."""
    import aekit.nn.codec as nn_codec

    photo = photos[0][:320, :448]  # 5 x 7 tiles of 64 pixels: inner tiles, edge tiles, corners
    whole = codec.compress(photo, 2)
    whole_image = codec.decompress(whole)
    monkeypatch.setattr(nn_codec, "TILE", 64)
    tiled = codec.compress(photo, 2)
    assert abs(len(tiled) - len(whole)) <= 8
    assert abs(psnr(photo, codec.decompress(tiled)) - psnr(photo, whole_image)) < 0.01
    difference = np.abs(codec.decompress(whole).astype(int) - whole_image)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    g_a = codec.model_.g_a
    x = torch.rand(1, 3, 192, 256)
    with torch.no_grad():
        np.testing.assert_allclose(nn_codec.tiled(g_a, x, 1 / 16, 64, 64), g_a(x), atol=1e-5)


def test_refinement_that_would_exhaust_memory_is_refused_first(codec, held_out, monkeypatch):
    """Refinement holds gradients through the whole image (about 760 bytes a pixel): where the
    system has less free, it is refused in one line before any work, not killed halfway."""
    import aekit.apps.compress.codec as codec_module

    assert codec_module._available_bytes() is None or codec_module._available_bytes() > 0
    monkeypatch.setattr(codec_module, "_available_bytes", lambda: 200_000_000)
    with pytest.raises(DataError, match=r"refining the latents of this 0.02-megapixel image \(--refine\) needs about "
                                        r"0.6 GB, and 0.2 GB are free: encode it without refinement"):
        codec.compress(held_out, 2, refine=2)
    assert len(codec.compress(held_out, 2)) > 0  # without refinement: nothing to check
