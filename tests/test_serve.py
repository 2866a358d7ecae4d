"""The packaged stack (platereader.packaging) and its HTTP server (platereader.serving), end to end.

Stand-in networks replace trained ones, built so that answers are real plates and depend on the
image, which makes "served == in-process" a real check:

- the localizer outlines the scene (its square, inset by 1/32) and its plate-present head rises
  with the image's texture: every noisy scene has a plate (presence 0.6-1, varying), a flat
  mid-grey image none (`framing_localizer`);
- the OCR reads PLATE_TEXT from any crop (its GRU counts the columns, `reading_ocr`), so the
  answer is a Swiss plate with canton and number, its confidence varying with the presence.

The server runs as users run it (`platereader serve`, a subprocess on a free loopback port) and gets
real multipart uploads and every kind of bad input; its web page is driven in headless Chromium.
"""

import base64
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

import params
from platereader import packaging, webpage
from platereader.images import load_image
from platereader.nets.networks import BLANK, Localizer, PlateOCR, encode_text, save_model
from platereader.nets.quantize import available, calibrate
from platereader.reader import PlateReader, ReaderConfig, answer_json
from tests.conftest import ROOT, set_params, stop

MAX_BODY_MB = 2  # small, so the 413 test sends little
RNG = np.random.default_rng(7)
BIN = Path(sys.executable).parent
PLATE_TEXT, PLATE = "ZH123", "ZH 123"
PLATE_KEYS = {"plate", "text", "format", "confidence", "corners", "canton", "number"}


def env(**extra) -> dict:
    e = dict(os.environ, MLEM_NO_ANALYTICS="true", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1", **extra)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list, port: int, log: Path) -> subprocess.Popen:
    """Start a server command and wait until it answers GET /interface.json."""
    out = open(log, "wb")
    process = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{args} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/interface.json", timeout=1).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{args} did not answer within 60 s:\n{log.read_text()}")


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def scene(width=256, height=256) -> Image.Image:
    """A noisy scene of random brightness with a bright plate-like box somewhere."""
    pixels = RNG.normal(RNG.uniform(30, 200), 40, (height, width, 3)).clip(0, 255).astype(np.uint8)
    top, left = int(RNG.uniform(0, 0.6) * height), int(RNG.uniform(0, 0.5) * width)
    pixels[top: top + max(1, height // 6), left: left + max(1, width // 2)] = 235
    return Image.fromarray(pixels, "RGB")


def flat_grey() -> bytes:
    """The image without a plate: no texture, so the stand-in localizer sees nothing."""
    return encode(Image.new("L", (256, 256), 128), "PNG")


def framing_localizer() -> tuple[Localizer, dict]:
    """A random localizer rewired to outline the scene and to see a plate in any textured one.

    Corners: channel 0 of the top-down features is 1 everywhere (x2's channel 0 off, lat2's bias
    1), and the head's 3x3 convolution counts, for corner k, the taps of the two kernel sides
    towards that corner which fall inside the map: 0 at that corner of the map, 2 along its two
    edges, 5 inside; 5 minus that, x 6, peaks sharply at the corner cell. So each pass answers its
    input's square inset by half a cell, and with a window margin of 1/30 (the inset) the quad is
    a fixed point of the window passes: the scene's square inset by 1/32.

    Presence: -2 + 500 x (positive weights) . (the deepest features' maxima): about 0.1 on a flat
    mid-grey image (features ~0), 0.6-1 on the test scenes. With its int8 copy, as training saves
    it (where PyTorch has int8 kernels), calibrated on noise and flat grey so that both ends of the
    logit's range survive the int8 rounding.
    """
    torch.manual_seed(0)
    localizer = Localizer(width=16, input_size=64)
    with torch.no_grad():
        localizer.present.weight.abs_().mul_(500)
        localizer.present.bias.fill_(-2.0)
        off = localizer.down2[1][1]
        off.weight[0], off.bias[0] = 0, 0
        localizer.lat2.weight.zero_()
        localizer.lat2.bias.zero_()
        localizer.lat2.bias[0] = 1
        (conv, norm, _), heatmaps = localizer.head
        conv.weight.zero_()
        for k, (row, col) in enumerate([(0, 0), (0, 2), (2, 2), (2, 0)]):  # TL, TR, BR, BL
            conv.weight[k, 0, row, :] = -1
            conv.weight[k, 0, :, col] = -1
        norm.weight.fill_(1)
        norm.bias.zero_()
        norm.bias[:4] = 5
        heatmaps.weight.zero_()
        heatmaps.bias.zero_()
        for k in range(4):
            heatmaps.weight[k, k] = 6
    extra = {"window_margin": [1 / 30, 1 / 30]}
    if available():
        inputs = torch.randint(0, 256, (32, 1, 64, 64))
        inputs[:8] = 128
        extra["int8"] = calibrate(localizer, inputs)
    return localizer, extra


def reading_ocr(text: str = PLATE_TEXT, z: float = 0.75, margin: float = 6.0) -> tuple[PlateOCR, dict]:
    """A random OCR that reads `text` from any crop, with a text confidence of about 0.995.

    Its GRU's first forward unit ignores the input and counts: from h = 0, with an update gate of
    `z` and a candidate of tanh(5) ~ 1, it is s_t = tanh(5) (1 - z^t) at column t. The classifier
    sees s only (the skip connection's channel 0 is zeroed): class k's logit is the line tangent to
    -A (s - c_k)^2 at c_k, so at each column the class whose centre c_k is nearest s wins, by at
    least `margin` logits: the text's characters at columns 1..len(text), blank after (CTC).
    No int8 copy: the lines' range is ~50x the margin, more than int8 outputs resolve.
    """
    torch.manual_seed(1)
    ocr = PlateOCR(width=16)
    gru, classify, size = ocr.sequence, ocr.classify, ocr.sequence.hidden_size
    rows = [0, size, 2 * size]  # unit 0 of the reset, update and candidate gates
    with torch.no_grad():
        ocr.collapse[1].weight[0] = 0
        ocr.collapse[1].bias[0] = 0
        for weight in (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0):
            weight[rows] = 0
        gru.bias_ih_l0[size] = float(np.log(z / (1 - z)))
        gru.bias_ih_l0[2 * size] = 5.0
        s = np.tanh(5.0) * (1 - z ** np.arange(1, len(text) + 2))
        centres = dict(zip(encode_text(text) + [BLANK], s))
        scale = margin / np.diff(s).min() ** 2
        classify.weight.zero_()
        classify.bias.fill_(-scale)  # the classes not in `text`: never the best
        for code, centre in centres.items():
            classify.weight[code, 0] = 2 * scale * centre
            classify.bias[code] = -scale * centre ** 2
    return ocr, {"crop_margin": [0.06, 0.2]}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """The stand-in localizer + OCR in the out/models layout."""
    root = tmp_path_factory.mktemp("models")
    for name, (model, extra) in (("localize", framing_localizer()), ("ocr", reading_ocr())):
        (root / name).mkdir()
        save_model(model, root / name / "model.pt", extra)
    return root


@pytest.fixture(scope="module")
def config() -> ReaderConfig:
    """The settings the save_stack stage packages: params.py:ReaderParams."""
    return ReaderConfig.from_params(params.ReaderParams)


@pytest.fixture(scope="module")
def reader(models_dir, config) -> PlateReader:
    return PlateReader.load(models_dir, config)


def expected(reader: PlateReader, data: bytes) -> dict:
    """The in-process answer for an encoded image, as the server should give it."""
    return answer_json(reader.read([load_image(data)])[0])


def assert_same_answer(got: dict, want: dict) -> None:
    """The same plates: equal text, format and fields, corners and confidence up to float rounding.
    The server reads with 1 torch thread and batches requests; other thread counts and batch sizes
    sum in another order, which moves the last bits."""
    assert set(got) == set(want) == {"plates"}
    assert len(got["plates"]) == len(want["plates"]), (got, want)
    for g, w in zip(got["plates"], want["plates"]):
        assert set(g) == set(w)
        assert {k: v for k, v in g.items() if k not in ("confidence", "corners")} == \
               {k: v for k, v in w.items() if k not in ("confidence", "corners")}
        assert g["confidence"] == pytest.approx(w["confidence"], abs=2e-3)
        assert np.allclose(g["corners"], w["corners"], atol=0.05), (g["corners"], w["corners"])


@pytest.fixture(scope="module")
def package(models_dir, tmp_path_factory) -> Path:
    """python -m platereader.stages.save_stack, as the DVC stage runs it."""
    output = tmp_path_factory.mktemp("mlem") / "plate_reader"
    result = subprocess.run([sys.executable, "-m", "platereader.stages.save_stack", "--models", str(models_dir),
                             "--output", str(output)], cwd=ROOT, env=env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}.mlem" in result.stdout
    return output


@pytest.fixture(scope="module")
def server(package, tmp_path_factory):
    """`platereader serve`, the console script users run."""
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    process = start([str(BIN / "platereader"), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--model", str(package), "--max-body-mb", str(MAX_BODY_MB)], port, log)
    yield f"http://127.0.0.1:{port}", process
    stop(process)


def post(url: str, data: bytes, field="file", filename="scene.jpg", **kwargs) -> requests.Response:
    return requests.post(url + "/predict", files={field: (filename, data, "application/octet-stream")},
                         timeout=60, **kwargs)


# --- the stand-ins ------------------------------------------------------------------------------

def test_the_stand_in_reader_reads_plates_in_scenes_and_none_in_flat_grey(reader):
    readings = reader.read([load_image(encode(scene(), "PNG")) for _ in range(4)] + [load_image(flat_grey())])
    assert [[r.plate for r in plates] for plates in readings] == [[PLATE]] * 4 + [[]]
    assert readings[0][0].fields == {"canton": "ZH", "number": "123"}
    assert np.allclose(readings[0][0].corners, [[8, 8], [248, 8], [248, 248], [8, 248]], atol=0.5)
    assert len({round(plates[0].confidence, 4) for plates in readings[:4]}) > 1


# --- the package --------------------------------------------------------------------------------

def test_package_layout(package, config):
    assert (package.parent / "plate_reader.mlem").is_file()
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "localize/model.pt", "ocr/model.pt", "reader.json"]
    meta = (package.parent / "plate_reader.mlem").read_text()
    assert "platereader.packaging.PlateReaderModelType" in meta and "predict" in meta
    assert "data.pkl" not in meta  # weights and config, not pickled code
    # The reader's settings, as plain JSON: those of params.py when the stage ran.
    assert ReaderConfig.from_dict(json.loads((package / "reader.json").read_text())) == config


def test_package_metadata_names_no_source_folder(package):
    # MLEM imports the classes by the names in the .mlem file: the installed package's
    # (platereader.packaging...), never a path into a checkout (src.platereader...).
    meta = (package.parent / "plate_reader.mlem").read_text()
    assert "src." not in meta and "src/" not in meta


def test_mlem_load_gives_the_same_reader(package, reader):
    import mlem.api

    loaded = mlem.api.load(str(package))
    assert isinstance(loaded, PlateReader)
    assert loaded.config == reader.config
    assert loaded.int8 == reader.int8
    # The package keeps the int8 copy the localizer file carries, and runs it where PyTorch can.
    assert "int8" in loaded.localizer_extra or not available()
    assert isinstance(loaded._localize, torch.fx.GraphModule) == available()
    assert loaded.ocr_extra == reader.ocr_extra
    for data in [encode(scene(300, 200), "PNG") for _ in range(3)]:
        assert_same_answer(answer_json(loaded.read([load_image(data)])[0]), expected(reader, data))
    # The MLEM method itself takes the encoded file, as the server does.
    from mlem.core.metadata import load_meta

    data = encode(scene(), "JPEG")
    assert_same_answer(load_meta(str(package), load_value=True).predict(data), expected(reader, data))


def test_a_package_answers_with_the_settings_it_was_packaged_with(models_dir, config, tmp_path):
    """Settings travel in the package (reader.json): a later params.py changes nothing in it."""
    images = []
    for i in range(6):
        images.append(tmp_path / f"scene{i}.png")
        images[-1].write_bytes(encode(scene(), "PNG"))
    images.append(tmp_path / "grey.png")
    images[-1].write_bytes(flat_grey())
    # Packaged with a floor between the scenes' confidences: some plates reported, some not.
    confidences = sorted(r.confidence for (r,) in PlateReader.load(models_dir, config).inspect(
        [load_image(p) for p in images]) if r.format)
    floor = round((confidences[2] + confidences[3]) / 2, 6)
    saved = replace(config, formats=("swiss",), min_confidence=floor)
    packaged = PlateReader.load(models_dir, saved)
    want = [answer_json(r) for r in packaged.read([load_image(p) for p in images])]
    assert 0 < sum(bool(a["plates"]) for a in want) < len(want)
    output = tmp_path / "mlem" / "plate_reader"
    packaging.save_stack(packaged, str(output))
    assert json.loads((output / "reader.json").read_text()) == json.loads(json.dumps(saved.to_dict()))

    # Another checkout whose params.py says otherwise: any US-style text is a plate, no floor.
    later = tmp_path / "later"
    later.mkdir()
    shutil.copy(ROOT / "params.py", later / "params.py")
    set_params(later, **{"ReaderParams.FORMATS": ["us"], "ReaderParams.MIN_CONFIDENCE": 0.0})
    later_env = env()
    later_env["PYTHONPATH"] = str(later) + os.pathsep + later_env["PYTHONPATH"]
    script = (
        "import json, sys, params\n"
        "from platereader import packaging\n"
        "from platereader.images import load_image\n"
        "from platereader.reader import PlateReader, ReaderConfig, answer_json\n"
        "reader = packaging.load_reader(sys.argv[1])\n"
        "now = ReaderConfig.from_params(params.ReaderParams)\n"
        "images = [load_image(p) for p in sys.argv[2:]]\n"
        "fresh = PlateReader(reader.localizer, reader.ocr, reader.ocr_extra, reader.localizer_extra, now)\n"
        "print(json.dumps({'params': params.__file__, 'loaded': reader.config.to_dict(), 'now': now.to_dict(),\n"
        "                  'answers': [answer_json(r) for r in reader.read(images)],\n"
        "                  'with_now': [answer_json(r) for r in fresh.read(images)]}))\n")
    result = subprocess.run([sys.executable, "-c", script, str(output), *map(str, images)], cwd=later,
                            env=later_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["params"] == str(later / "params.py")
    assert ReaderConfig.from_dict(got["loaded"]) == saved
    assert ReaderConfig.from_dict(got["now"]) == replace(config, formats=("us",), min_confidence=0.0)
    for answer, want_one in zip(got["answers"], want):
        assert_same_answer(answer, want_one)
    assert got["with_now"] != got["answers"]  # with that process's params, the answers would differ

    # `platereader read` there answers the same, one JSON line per image.
    result = subprocess.run([str(BIN / "platereader"), "read", "--model", str(output), *map(str, images)],
                            cwd=later, env=later_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.pop("file") for line in lines] == [str(p) for p in images]
    for answer, want_one in zip(lines, want):
        assert_same_answer(answer, want_one)


def test_save_stack_without_models_is_a_plain_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "platereader.stages.save_stack", "--models", str(tmp_path),
                             "--output", str(tmp_path / "out" / "plate_reader")], cwd=ROOT,
                            env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "plate_reader.mlem").exists()


@pytest.mark.parametrize("command", [[sys.executable, "-m", "platereader.serving"],
                                     [str(BIN / "platereader"), "serve"]])
def test_serve_without_package_is_a_plain_error(tmp_path, command):
    result = subprocess.run([*command, "--model", str(tmp_path / "nope"), "--port", str(free_port())],
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "dvc repro save_stack" in result.stderr
    assert "Traceback" not in result.stderr


# --- good requests ------------------------------------------------------------------------------

def rgba_scene():
    image = scene(320, 240).convert("RGBA")
    alpha = np.full((240, 320), 255, dtype=np.uint8)
    alpha[:40] = 0
    image.putalpha(Image.fromarray(alpha))
    return encode(image, "PNG")


def exif_rotated():
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(scene(400, 300), "JPEG", exif=exif)


GOOD = {
    "jpeg": lambda: encode(scene(), "JPEG", quality=90),
    "png-rgba": rgba_scene,
    "png-gray": lambda: encode(scene(200, 120).convert("L"), "PNG"),
    "png-palette": lambda: encode(scene(180, 180).convert("P"), "PNG"),
    "png-16bit": lambda: encode(Image.fromarray(
        np.asarray(scene(150, 100).convert("L")).astype(np.uint16) * 257), "PNG"),
    "webp": lambda: encode(scene(256, 192), "WEBP"),
    "bmp": lambda: encode(scene(64, 48), "BMP"),
    "jpeg-cmyk": lambda: encode(scene(200, 200).convert("CMYK"), "JPEG"),
    "jpeg-exif-rotated": exif_rotated,
    "large": lambda: encode(scene(2400, 1600), "JPEG", quality=80),
    "tiny": lambda: encode(scene(3, 2), "PNG"),
}


@pytest.mark.parametrize("kind", GOOD)
def test_served_answer_is_the_in_process_answer(server, reader, kind):
    url, _ = server
    data = GOOD[kind]()
    response = post(url, data)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"plates"}
    for plate in answer["plates"]:
        assert set(plate) == PLATE_KEYS
        assert 0 <= plate["confidence"] <= 1 and len(plate["corners"]) == 4
    assert_same_answer(answer, expected(reader, data))


def test_answers_depend_on_the_image(server):
    url, _ = server
    answers = [post(url, encode(scene(), "PNG")).json() for _ in range(4)]
    assert all(a["plates"] and a["plates"][0]["plate"] == PLATE for a in answers)
    assert answers[0]["plates"][0] | {"confidence": 0, "corners": 0} == {
        "plate": PLATE, "text": PLATE_TEXT, "format": "swiss", "canton": "ZH", "number": "123",
        "confidence": 0, "corners": 0}
    # The stand-in models are not constant: the equality tests bite.
    assert len({a["plates"][0]["confidence"] for a in answers}) > 1


def test_no_plate_is_a_200_with_no_plates(server):
    url, _ = server
    response = post(url, flat_grey(), filename="grey.png")
    assert response.status_code == 200
    assert response.json() == {"plates": []}


def test_concurrent_requests_get_their_own_answers(server, reader):
    from concurrent.futures import ThreadPoolExecutor

    url, _ = server
    images = [encode(scene(), "JPEG") for _ in range(15)] + [flat_grey()]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda data: post(url, data).json(), images))
    want = reader.read([load_image(d) for d in images])
    for got, readings in zip(answers, want):
        assert_same_answer(got, answer_json(readings))
    assert answers[-1] == {"plates": []}


# --- bad requests -------------------------------------------------------------------------------

def bomb() -> bytes:
    return encode(Image.new("1", (20000, 20000)), "PNG")  # 400 MP in ~50 kB


def over_limit_png() -> bytes:
    return encode(Image.new("L", (8000, 7000)), "PNG")  # 56 MP, under Pillow's own bomb check


BAD = {
    "not-an-image": (lambda url: post(url, b"hello, I am a text file"), 400, "not an image"),
    "empty-file": (lambda url: post(url, b""), 400, "is empty"),
    "truncated-jpeg": (lambda url: post(url, GOOD["jpeg"]()[:3000]), 400, "truncated"),
    "truncated-png": (lambda url: post(url, encode(scene(), "PNG")[:5000]), 400, "truncated"),
    "decompression-bomb": (lambda url: post(url, bomb()), 400, "too many pixels"),
    "too-many-pixels": (lambda url: post(url, over_limit_png()), 400, "over the limit of 50"),
    "wrong-field": (lambda url: post(url, GOOD["jpeg"](), field="image"), 422, "field named 'file'"),
    "no-body": (lambda url: requests.post(url + "/predict", timeout=30), 422, "field named 'file'"),
    "raw-body": (lambda url: requests.post(url + "/predict", data=GOOD["jpeg"](), timeout=30,
                                           headers={"Content-Type": "image/jpeg"}),
                 422, "multipart/form-data"),
    "broken-multipart": (lambda url: requests.post(
        url + "/predict", data=b"--x\r\ngarbage", timeout=30,
        headers={"Content-Type": "multipart/form-data; boundary=y"}), 400, "multipart/form-data"),
    "body-over-limit": (lambda url: post(url, b"\xff" * (MAX_BODY_MB * 1_000_000 + 1)), 413,
                        f"over the {MAX_BODY_MB} MB limit"),
    "chunked-over-limit": (lambda url: requests.post(
        url + "/predict", data=iter([b"\0" * 500_000] * (2 * MAX_BODY_MB + 1)), timeout=30,
        headers={"Content-Type": "multipart/form-data; boundary=y"}), 413, "limit"),
    "get-predict": (lambda url: requests.get(url + "/predict", timeout=30), 405, "Method Not Allowed"),
    "unknown-path": (lambda url: requests.post(url + "/nope", timeout=30), 404, "Not Found"),
}


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_is_a_plain_4xx_and_the_server_lives_on(server, reader, kind):
    url, process = server
    send, status, message = BAD[kind]
    response = send(url)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and message in body["error"], body
    assert "Traceback" not in body["error"] and "\n" not in body["error"]
    # The worker survived and the next good request is answered.
    assert process.poll() is None
    good = GOOD["jpeg"]()
    after = post(url, good)
    assert after.status_code == 200
    assert_same_answer(after.json(), expected(reader, good))


def test_client_that_hangs_up_mid_upload_does_not_hurt(server):
    url, process = server
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Type", "multipart/form-data; boundary=y")
    conn.putheader("Content-Length", "100000")
    conn.endheaders()
    conn.send(b"--y\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n")
    conn.close()
    time.sleep(0.3)
    assert process.poll() is None
    assert post(url, GOOD["jpeg"]()).status_code == 200


# --- docs -------------------------------------------------------------------------------------

def test_openapi_documents_the_upload(server):
    url, _ = server
    spec = requests.get(url + "/openapi.json", timeout=30).json()
    assert "/" not in spec["paths"]  # the page is for people, not part of the API
    operation = spec["paths"]["/predict"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    schema_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    schemas = spec["components"]["schemas"]
    body = schemas[schema_ref.rsplit("/", 1)[-1]]
    assert body["properties"]["file"] == {"type": "string", "format": "binary", "title": "File"}
    answer_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    answer = schemas[answer_ref.rsplit("/", 1)[-1]]
    assert set(answer["properties"]) == {"plates"}
    plate_ref = answer["properties"]["plates"]["items"]["$ref"]
    assert set(schemas[plate_ref.rsplit("/", 1)[-1]]["properties"]) == {
        "plate", "text", "format", "confidence", "corners"}  # and the format's fields
    assert set(operation["responses"]) >= {"200", "400", "413", "422"}


def test_docs_page_needs_no_internet(server):
    url, _ = server
    page = requests.get(url + "/docs", timeout=30).text
    assert "cdn.jsdelivr.net" not in page and "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert requests.get(url + "/static/swagger-ui/swagger-ui-bundle.js", timeout=30).status_code == 200


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(chromium() is None, reason="no chromium: `make browser` installs it (apt)")


@needs_chromium
def test_docs_render_in_a_headless_browser(server, tmp_path):
    url, _ = server
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         url + "/docs"], capture_output=True, text=True, timeout=90)
    dom = result.stdout
    # Swagger UI built the page from /openapi.json: the operation and its upload form are there.
    assert 'data-path="/predict"' in dom, result.stderr[-2000:]
    assert "opblock-post" in dom and "ImageAnswer" in dom


# --- the web page -------------------------------------------------------------------------------

def test_page_is_one_offline_document(server):
    url, _ = server
    response = requests.get(url + "/", timeout=30, allow_redirects=False)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    # Nothing from elsewhere: no URL to another host, no external script or style sheet, and a
    # policy that would block one anyway.
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert "<script src" not in page and "<link" not in page
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert 'type="file"' in page and 'fetch("predict"' in page and 'append("file"' in page


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    JSON messages ended by a NUL byte on descriptors 3 and 4): no port, no websocket library."""

    def __init__(self, folder: Path):
        to_chrome, self._write = os.pipe()
        self._read, from_chrome = os.pipe()
        self.log = folder / "chromium.log"
        # The shell hands the pipes over as descriptors 3 and 4, then gives Chromium a quiet stdin
        # and stdout.
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$@" 3<&0 4>&1 </dev/null >&2', "sh", chromium(), "--headless",
             "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={folder / 'profile'}", "--remote-debugging-pipe", "about:blank"],
            stdin=to_chrome, stdout=from_chrome, stderr=open(self.log, "wb"))
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._id = 0

    def close(self):
        os.close(self._write)
        os.close(self._read)
        stop(self.process)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = memoryview(json.dumps(message).encode() + b"\0")
        while data:
            data = data[os.write(self._write, data):]
        deadline = time.monotonic() + timeout
        while True:  # events and other replies are skipped
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def _next(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise AssertionError(f"no answer from Chromium:\n{self.log.read_text()[-2000:]}")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise AssertionError(f"Chromium exited:\n{self.log.read_text()[-2000:]}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url: str) -> "Tab":
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        tab = Tab(self, self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
        tab.call("Page.navigate", url=url)
        tab.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")
        return tab


class Tab:
    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def call(self, method: str, **params):
        return self.browser.call(method, self.session, **params)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout:g} s: {expression}")
            time.sleep(0.1)
        return value

    def upload(self, selector: str, path: Path):
        """Choose `path` in the file input, as a user does (the page gets its change event)."""
        node = self.call("Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)})")
        self.call("DOM.setFileInputFiles", files=[str(path)], objectId=node["result"]["objectId"])

    def state(self) -> dict:
        """What the page shows: its state, status line, listed plates, canvas size and JSON answer."""
        return self.evaluate("""({
            state: document.body.dataset.state,
            status: document.getElementById("status").textContent,
            plates: [...document.querySelectorAll("#plates li")].map((li) => li.textContent),
            canvas: document.getElementById("figure").hidden ? null
                    : [document.getElementById("canvas").width, document.getElementById("canvas").height],
            answer: document.getElementById("raw").hidden ? null : JSON.parse(document.getElementById("json").textContent),
            html: document.documentElement.outerHTML,
        })""")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if chromium() is None:
        pytest.skip("no chromium: `make browser` installs it (apt)")
    browser = Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


def pixel_at(tab: Tab, x: float, y: float) -> list[int]:
    return tab.evaluate(f"Array.from(document.getElementById('canvas').getContext('2d')"
                        f".getImageData({int(x)}, {int(y)}, 1, 1).data)")


def is_stroke(rgba: list[int]) -> bool:
    want = [int(webpage.STROKE[i: i + 2], 16) for i in (1, 3, 5)]
    return all(abs(a - b) <= 24 for a, b in zip(rgba, want))


@needs_chromium
def test_page_reads_a_chosen_photo_and_outlines_the_plate(server, reader, browser, tmp_path):
    url, _ = server
    photo = tmp_path / "car.jpg"
    photo.write_bytes(encode(scene(320, 320), "JPEG", quality=90))
    want = expected(reader, photo.read_bytes())
    assert len(want["plates"]) == 1, "the stand-in reader reads one plate in a noisy scene"
    plate = want["plates"][0]
    tab = browser.open(url + "/")
    assert tab.state()["state"] == "idle"
    tab.upload("#file", photo)
    tab.wait_for("document.body.dataset.state === 'done' || document.body.dataset.state === 'error'")
    shown = tab.state()
    assert shown["state"] == "done", shown["status"]
    assert shown["status"] == "1 plate in car.jpg:"
    assert len(shown["plates"]) == 1 and shown["plates"][0].startswith(PLATE + "swiss")
    assert float(shown["plates"][0].removeprefix(PLATE + "swiss").removesuffix(" %")) == pytest.approx(
        100 * plate["confidence"], abs=0.06)
    assert PLATE in shown["html"]
    assert_same_answer(shown["answer"], want)
    # The photo at its own size, the plate's quad (the stand-in's: the photo inset by 1/32) on it.
    assert shown["canvas"] == [320, 320]
    (x0, y0), _, _, (x3, y3) = plate["corners"]
    assert is_stroke(pixel_at(tab, (x0 + x3) / 2, (y0 + y3) / 2))
    assert not is_stroke(pixel_at(tab, 160, 160))


@needs_chromium
def test_page_draws_each_quad_with_its_text_and_confidence(server, browser):
    url, _ = server
    tab = browser.open(url + "/")
    corners = [[100, 150], [300, 140], [305, 200], [98, 210]]
    answer = {"plates": [{"plate": "BE 4521", "text": "BE4521", "format": "swiss", "confidence": 0.87,
                          "corners": corners, "canton": "BE", "number": "4521"}]}
    tab.evaluate(f"""(async () => {{
        const grey = new OffscreenCanvas(400, 300), ctx = grey.getContext("2d");
        ctx.fillStyle = "#808080";
        ctx.fillRect(0, 0, 400, 300);
        show({json.dumps(answer)}, await createImageBitmap(grey), "grey.png");
    }})()""")
    shown = tab.state()
    assert shown["state"] == "done" and shown["canvas"] == [400, 300]
    assert shown["plates"] == ["BE 4521swiss87.0 %"]
    # Every edge is outlined (the middle of each), the plate's inside is left as it was.
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        assert is_stroke(pixel_at(tab, (x0 + x1) / 2, (y0 + y1) / 2)), ((x0, y0), (x1, y1))
    assert pixel_at(tab, 200, 175) == [128, 128, 128, 255]
    # The label sits above the plate, in the outline's colour.
    assert is_stroke(pixel_at(tab, 99, 128)) and not is_stroke(pixel_at(tab, 99, 60))


@needs_chromium
def test_page_takes_a_dropped_photo_and_shows_the_servers_errors(server, reader, browser):
    url, _ = server
    tab = browser.open(url + "/")

    def drop(name: str, data: bytes, mime: str):
        tab.evaluate(f"""(() => {{
            const bytes = Uint8Array.from(atob("{base64.b64encode(data).decode()}"), (c) => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], {json.dumps(name)}, {{type: {json.dumps(mime)}}}));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", {{dataTransfer: files, bubbles: true, cancelable: true}}));
        }})()""")
        tab.wait_for(f"""document.body.dataset.state !== "reading"
                         && document.getElementById("status").textContent.includes({json.dumps(name)})""")
        return tab.state()

    shown = drop("notes.txt", b"hello, I am a text file", "text/plain")
    assert shown["state"] == "error" and "not an image" in shown["status"], shown["status"]
    photo = encode(scene(), "PNG")
    shown = drop("photo.png", photo, "image/png")
    assert shown["state"] == "done", shown["status"]
    assert_same_answer(shown["answer"], expected(reader, photo))
    assert [p.startswith(PLATE) for p in shown["plates"]] == [True]
    shown = drop("grey.png", flat_grey(), "image/png")
    assert shown["state"] == "done" and shown["status"] == "No plate found in grey.png."
    assert shown["plates"] == [] and shown["answer"] == {"plates": []}


# --- MLEM's own command line --------------------------------------------------------------------

def test_mlem_cli_serves_the_same_model(package, reader, tmp_path):
    mlem = BIN / "mlem"
    if not mlem.exists():
        pytest.skip("no mlem executable next to this python")
    port = free_port()
    process = start([str(mlem), "serve", "fastapi", "--model", str(package), "--host", "127.0.0.1",
                     "--port", str(port)], port, tmp_path / "mlem.log")
    try:
        url = f"http://127.0.0.1:{port}"
        data = GOOD["png-rgba"]()
        response = post(url, data)
        assert response.status_code == 200
        assert_same_answer(response.json(), expected(reader, data))
        bad = post(url, b"not an image")
        assert bad.status_code == 400 and "not an image" in bad.json()["error"]
    finally:
        stop(process)
