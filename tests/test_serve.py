"""The packaged stack (platereader.packaging) and its HTTP server (platereader.serving), end to end.

Randomly initialised models stand in for trained ones: their answers are junk but deterministic,
so "served == in-process" is a real check. The server runs as users run it (a subprocess on a free
loopback port) and gets real multipart uploads and every kind of bad input.
"""

import http.client
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from platereader.nets.networks import Localizer, PlateOCR, save_model
from platereader.nets.quantize import available, calibrate
from platereader.reader import PlateReader
from platereader.images import load_image
from tests.conftest import ROOT, stop

MAX_BODY_MB = 2  # small, so the 413 test sends little
RNG = np.random.default_rng(7)


def env() -> dict:
    e = dict(os.environ, MLEM_NO_ANALYTICS="true", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
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


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    """Random localizer + OCR in the out/models layout, biased so answers depend on the image."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    localizer, ocr = Localizer(width=16, input_size=64), PlateOCR(width=16)
    with torch.no_grad():
        # Plate-present probability ~0.7 and a mostly-blank OCR (text confidence ~0.9), both
        # scaled up so the reported confidence visibly depends on the image.
        localizer.present.weight.mul_(100)
        localizer.present.bias.fill_(1.0)
        ocr.classify.weight.mul_(4)
        ocr.classify.bias[0] = 9.0
    # With int8 copies, as training saves them (where PyTorch has int8 kernels), calibrated here on
    # random inputs.
    localizer_extra, ocr_extra = {}, {"crop_margin": 0.08}
    if available():
        localizer_extra["int8"] = calibrate(localizer, torch.randint(0, 256, (32, 1, 64, 64)))
        ocr_extra["int8"] = calibrate(ocr, torch.randint(0, 256, (32, 1, 32, 128)))
    for name, model, extra in (("localize", localizer, localizer_extra), ("ocr", ocr, ocr_extra)):
        (root / name).mkdir()
        save_model(model, root / name / "model.pt", extra)
    return root


def assert_same_answer(got: dict, want: dict) -> None:
    """The same reading: equal text, corners and confidence up to float rounding. The server reads
    with 1 torch thread and batches requests; other thread counts and batch sizes sum in another
    order, which moves the last bits, and a confidence multiplies 32 per-column probabilities."""
    assert set(got) == set(want)
    assert {k: got[k] for k in ("plate", "canton", "number")} == {k: want[k] for k in ("plate", "canton", "number")}
    assert got["confidence"] == pytest.approx(want["confidence"], abs=2e-3)
    assert (got["corners"] is None) == (want["corners"] is None)
    if want["corners"] is not None:
        assert got["corners"] == pytest.approx(want["corners"], abs=0.05)


@pytest.fixture(scope="module")
def reader(models_dir) -> PlateReader:
    return PlateReader.load(models_dir)


@pytest.fixture(scope="module")
def package(models_dir, tmp_path_factory) -> Path:
    """python -m platereader.packaging, as the DVC stage runs it."""
    output = tmp_path_factory.mktemp("mlem") / "plate_reader"
    result = subprocess.run([sys.executable, "-m", "platereader.packaging", "--models", str(models_dir),
                             "--output", str(output)], cwd=ROOT, env=env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}.mlem" in result.stdout
    return output


@pytest.fixture(scope="module")
def server(package, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    process = start([sys.executable, "-m", "platereader.serving", "--host", "127.0.0.1", "--port", str(port),
                     "--model", str(package), "--max-body-mb", str(MAX_BODY_MB)], port, log)
    yield f"http://127.0.0.1:{port}", process
    stop(process)


def post(url: str, data: bytes, field="file", filename="scene.jpg", **kwargs) -> requests.Response:
    return requests.post(url + "/predict", files={field: (filename, data, "application/octet-stream")},
                         timeout=60, **kwargs)


# --- the package --------------------------------------------------------------------------------

def test_package_layout(package):
    assert (package.parent / "plate_reader.mlem").is_file()
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()) == [
        "localize/model.pt", "ocr/model.pt"]
    meta = (package.parent / "plate_reader.mlem").read_text()
    assert "platereader.packaging.PlateReaderModelType" in meta and "predict" in meta
    assert "data.pkl" not in meta  # weights and config, not pickled code


def test_mlem_load_gives_the_same_reader(package, reader):
    import mlem.api

    loaded = mlem.api.load(str(package))
    assert isinstance(loaded, PlateReader)
    assert loaded.int8 == reader.int8 == available()  # the package keeps the int8 copies
    images = [load_image(encode(scene(300, 200), "PNG")) for _ in range(3)]
    for image in images:
        assert_same_answer(loaded.predict(image), reader.predict(image))
    # The MLEM method itself takes the encoded file, as the server does.
    from mlem.core.metadata import load_meta

    data = encode(scene(), "JPEG")
    assert_same_answer(load_meta(str(package), load_value=True).predict(data), reader.predict(load_image(data)))


def test_save_stack_without_models_is_a_plain_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "platereader.packaging", "--models", str(tmp_path),
                             "--output", str(tmp_path / "out" / "plate_reader")], cwd=ROOT,
                            env=env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "plate_reader.mlem").exists()


def test_serve_without_package_is_a_plain_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "platereader.serving", "--model", str(tmp_path / "nope"),
                             "--port", str(free_port())], cwd=ROOT, env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "python -m platereader.packaging" in result.stderr and "Traceback" not in result.stderr


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
    assert set(answer) == {"plate", "canton", "number", "confidence", "corners"}
    assert_same_answer(answer, reader.predict(load_image(data)))
    assert 0 <= answer["confidence"] <= 1


def test_answers_depend_on_the_image(server):
    url, _ = server
    confidences = {post(url, encode(scene(), "PNG")).json()["confidence"] for _ in range(4)}
    assert len(confidences) > 1  # the stand-in models are not constant: the equality test bites


def test_no_plate_is_a_200_with_plate_null(server):
    url, _ = server
    response = post(url, encode(Image.new("L", (256, 256), 255), "PNG"), filename="blank.png")
    assert response.status_code == 200
    assert response.json()["plate"] is None and response.json()["corners"] is None


def test_concurrent_requests_get_their_own_answers(server, reader):
    from concurrent.futures import ThreadPoolExecutor

    url, _ = server
    images = [encode(scene(), "JPEG") for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda data: post(url, data).json(), images))
    expected = reader.read([load_image(d) for d in images])
    for got, want in zip(answers, expected):
        assert_same_answer(got, want)


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
    assert_same_answer(after.json(), reader.predict(load_image(good)))


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
    operation = spec["paths"]["/predict"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    schema_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    body = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[-1]]
    assert body["properties"]["file"] == {"type": "string", "format": "binary", "title": "File"}
    answer_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(spec["components"]["schemas"][answer_ref.rsplit("/", 1)[-1]]["properties"]) == {
        "plate", "canton", "number", "confidence", "corners"}


def test_docs_page_needs_no_internet(server):
    url, _ = server
    page = requests.get(url + "/docs", timeout=30).text
    assert "cdn.jsdelivr.net" not in page and "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert requests.get(url + "/static/swagger-ui/swagger-ui-bundle.js", timeout=30).status_code == 200


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="no chromium: `make browser` installs it (apt)")
def test_docs_render_in_a_headless_browser(server, tmp_path):
    url, _ = server
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         url + "/docs"], capture_output=True, text=True, timeout=90)
    dom = result.stdout
    # Swagger UI built the page from /openapi.json: the operation and its upload form are there.
    assert 'data-path="/predict"' in dom, result.stderr[-2000:]
    assert "opblock-post" in dom and "PlateAnswer" in dom


# --- MLEM's own command line --------------------------------------------------------------------

def test_mlem_cli_serves_the_same_model(package, reader, tmp_path):
    mlem = Path(sys.executable).parent / "mlem"
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
        assert_same_answer(response.json(), reader.predict(load_image(data)))
        bad = post(url, b"not an image")
        assert bad.status_code == 400 and "not an image" in bad.json()["error"]
    finally:
        stop(process)
